// Fuzz target: a llama2.c tokenizer.bin (int32 max_token_length, then {float score, int32 len,
// bytes} per token). The file does not store its vocabulary size (the model does), so the
// target counts the records the file seems to hold and uses that, and also claims a huge
// vocabulary, which must fail before anything of that size is allocated.
#include <cstring>

#include "model/config.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tokenizer/spm_convert.h"
#include "tokenizer/tokenizer.h"

namespace engine::fuzz {
namespace {

int32_t CountRecords(std::string_view bytes) {
  size_t pos = 4;
  int32_t count = 0;
  while (pos + 8 <= bytes.size()) {
    int32_t len = 0;
    std::memcpy(&len, bytes.data() + pos + 4, 4);
    if (len < 0 || static_cast<size_t>(len) > bytes.size() - pos - 8) break;
    pos += 8 + static_cast<size_t>(len);
    ++count;
  }
  return count;
}

}  // namespace

absl::Status FuzzTokenizerBin(FuzzInput data) {
  const std::string_view bytes = AsText(data);
  (void)tokenizer::Llama2cToSpmModel(bytes, static_cast<int32_t>(model::kMaxVocab), "fuzz.bin");
  absl::StatusOr<std::unique_ptr<tokenizer::Tokenizer>> tok =
      tokenizer::Tokenizer::FromLlama2cBytes(bytes, CountRecords(bytes), "fuzz/tokenizer.bin");
  if (!tok.ok()) return tok.status();
  ExerciseTokenizer(**tok);
  return absl::OkStatus();
}

}  // namespace engine::fuzz
