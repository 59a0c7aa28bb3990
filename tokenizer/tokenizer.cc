// Tokenizer factories: read the file, pick the implementation (SentencePiece or BPE) and
// convert foreign vocabularies on the way (spm_convert.h, hf_tokenizer_json.h).
#include "tokenizer/tokenizer.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/spm_convert.h"
#include "tokenizer/spm_tokenizer.h"

namespace engine::tokenizer {
namespace {

// The largest real tokenizer files (tokenizer.json of 250k-token vocabularies) are tens of MiB.
constexpr int64_t kMaxTokenizerFileBytes = int64_t{256} << 20;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot stat: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  if (st.st_size > kMaxTokenizerFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.st_size,
                                                   " bytes, more than the ", kMaxTokenizerFileBytes,
                                                   " a tokenizer file may have"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open: ", std::strerror(err)));
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return std::move(contents).str();
}

std::string Directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePieceFile(
    const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
  return FromSentencePieceBytes(bytes, path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSentencePieceBytes(
    std::string_view bytes, const std::string& source) {
  return CreateSpmTokenizerFromModelBytes(bytes, source);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromLlama2cFile(const std::string& path,
                                                                      int32_t vocab_size) {
  ENGINE_ASSIGN_OR_RETURN(const std::string bytes, ReadFile(path));
  return FromLlama2cBytes(bytes, vocab_size, path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromLlama2cBytes(std::string_view bytes,
                                                                       int32_t vocab_size,
                                                                       const std::string& source) {
  ENGINE_ASSIGN_OR_RETURN(SpmModelProto model, Llama2cToSpmModel(bytes, vocab_size, source));
  return CreateSpmTokenizerFromModel(std::move(model), /*add_bos=*/true, source);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfTokenizerJson(const std::string& path) {
  ENGINE_ASSIGN_OR_RETURN(const std::string json, ReadFile(path));
  HfTokenizerOptions options;
  // tokenizer.json does not name the EOS token; tokenizer_config.json beside it does.
  const std::string config_path = Directory(path) + "/tokenizer_config.json";
  if (std::ifstream(config_path).good()) {
    ENGINE_ASSIGN_OR_RETURN(options.tokenizer_config_json, ReadFile(config_path));
  }
  return FromHfTokenizerJsonText(json, path, options);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfTokenizerJsonText(
    std::string_view json, const std::string& source) {
  return FromHfTokenizerJsonText(json, source, HfTokenizerOptions());
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromHfTokenizerJsonText(
    std::string_view json, const std::string& source, const HfTokenizerOptions& options) {
  ENGINE_ASSIGN_OR_RETURN(BpeTokenizerConfig config, BpeConfigFromHfJson(json, source, options));
  return CreateBpeTokenizer(std::move(config));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufVocabSpec& vocab) {
  const std::string source =
      absl::StrCat("GGUF vocabulary (tokenizer.ggml.model '", vocab.model, "')");
  if (vocab.model == "llama") {
    ENGINE_ASSIGN_OR_RETURN(SpmModelProto model, GgufLlamaToSpmModel(vocab, source));
    return CreateSpmTokenizerFromModel(std::move(model), vocab.add_bos, source);
  }
  if (vocab.model == "gpt2") {
    ENGINE_ASSIGN_OR_RETURN(BpeTokenizerConfig config, BpeConfigFromGguf(vocab, source));
    return CreateBpeTokenizer(std::move(config));
  }
  return absl::UnimplementedError(absl::StrCat("tokenizer.ggml.model '", vocab.model,
                                               "' is not supported (expected llama or gpt2)"));
}

}  // namespace engine::tokenizer
