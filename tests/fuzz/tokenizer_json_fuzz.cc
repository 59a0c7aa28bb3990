// Fuzz target: a Hugging Face tokenizer.json (BPE vocab and merges, added tokens, normalizer /
// pre-tokenizer / decoder / post-processor components, regex patterns), optionally followed by
// a NUL byte and a tokenizer_config.json. A tokenizer that builds is then used.
#include "tests/fuzz/fuzz_targets.h"
#include "tokenizer/tokenizer.h"

namespace engine::fuzz {

absl::Status FuzzTokenizerJson(FuzzInput data) {
  std::string_view json = AsText(data);
  tokenizer::HfTokenizerOptions options;
  if (const size_t nul = json.find('\0'); nul != std::string_view::npos) {
    options.tokenizer_config_json = std::string(json.substr(nul + 1));
    json = json.substr(0, nul);
  }
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tok =
      tokenizer::Tokenizer::FromHfTokenizerJsonText(json, "fuzz/tokenizer.json", options);
  if (!tok.ok()) return tok.status();
  ExerciseTokenizer(**tok);
  return absl::OkStatus();
}

}  // namespace engine::fuzz
