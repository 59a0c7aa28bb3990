#include "engine/tokenizer_loader.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "model/gguf_reader.h"
#include "model/mapped_file.h"

namespace engine {
namespace {

using tokenizer::Tokenizer;

tokenizer::GgufVocabSpec ToSpec(const model::GgufVocab& v) {
  return tokenizer::GgufVocabSpec{.model = v.model,
                                  .pre = v.pre,
                                  .tokens = v.tokens,
                                  .scores = v.scores,
                                  .token_types = v.token_types,
                                  .merges = v.merges,
                                  .bos_id = v.bos_id,
                                  .eos_id = v.eos_id,
                                  .unk_id = v.unk_id,
                                  .pad_id = v.pad_id,
                                  .add_bos = v.add_bos,
                                  .add_space_prefix = v.add_space_prefix};
}

absl::StatusOr<std::unique_ptr<Tokenizer>> CheckVocabSize(
    absl::StatusOr<std::unique_ptr<Tokenizer>> tok, int32_t vocab_size, const std::string& where) {
  if (!tok.ok()) return tok;
  if ((*tok)->vocab_size() > vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": the tokenizer has ",
                                                   (*tok)->vocab_size(),
                                                   " tokens, the model's vocabulary only ",
                                                   vocab_size));
  }
  return tok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const model::TokenizerSource& source,
                                                         int32_t vocab_size) {
  using Kind = model::TokenizerSource::Kind;
  const std::string where = source.path.empty() ? "embedded tokenizer" : source.path;
  const bool embedded = !source.embedded.empty();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok;
  switch (source.kind) {
    case Kind::kNone:
      return absl::NotFoundError(
          "no tokenizer found with the model; pass one with --tokenizer FILE");
    case Kind::kSentencePieceFile:
      tok = embedded ? Tokenizer::FromSentencePieceBytes(source.embedded, where)
                     : Tokenizer::FromSentencePieceFile(source.path);
      break;
    case Kind::kLlama2cFile:
      tok = embedded ? Tokenizer::FromLlama2cBytes(source.embedded, vocab_size, where)
                     : Tokenizer::FromLlama2cFile(source.path, vocab_size);
      break;
    case Kind::kHfTokenizerJson: {
      // BOS/EOS: tokenizer_config.json beside tokenizer.json, and the ids config.json gave.
      tokenizer::HfTokenizerOptions options{.bos_id = source.bos_id, .eos_id = source.eos_id};
      std::string json = source.embedded;
      if (!embedded) {
        ENGINE_ASSIGN_OR_RETURN(json, model::ReadFileToString(source.path));
        const size_t slash = source.path.find_last_of('/');
        const std::string dir = slash == std::string::npos ? "." : source.path.substr(0, slash);
        absl::StatusOr<std::string> config = model::ReadFileToString(dir + "/tokenizer_config.json");
        if (config.ok()) options.tokenizer_config_json = *std::move(config);
      }
      tok = Tokenizer::FromHfTokenizerJsonText(json, where, options);
      break;
    }
    case Kind::kGguf:
      tok = Tokenizer::FromGguf(ToSpec(source.gguf));
      break;
  }
  return CheckVocabSize(std::move(tok), vocab_size, where);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizerFile(const std::string& path,
                                                             int32_t vocab_size) {
  model::TokenizerSource source;
  source.path = path;
  {
    ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<model::MappedFile> file,
                            model::MappedFile::Open(path));
    const uint8_t* p = file->data();
    const size_t n = file->size();
    size_t first = 0;
    while (first < n && (p[first] == ' ' || p[first] == '\n' || p[first] == '\r' ||
                         p[first] == '\t')) {
      ++first;
    }
    if (n >= 4 && std::memcmp(p, "GGUF", 4) == 0) {
      source.kind = model::TokenizerSource::Kind::kGguf;
    } else if (first < n && p[first] == '{') {
      source.kind = model::TokenizerSource::Kind::kHfTokenizerJson;
    } else if (n >= 4 && p[1] == 0 && p[2] == 0 && p[3] == 0) {
      // llama2.c tokenizer.bin starts with a small int32 (max_token_length); a SentencePiece
      // ModelProto starts with a field tag and a varint length, never three zero bytes.
      source.kind = model::TokenizerSource::Kind::kLlama2cFile;
    } else {
      source.kind = model::TokenizerSource::Kind::kSentencePieceFile;
    }
  }
  if (source.kind == model::TokenizerSource::Kind::kGguf) {
    ENGINE_ASSIGN_OR_RETURN(source.gguf, model::ReadGgufVocab(path));
  }
  return LoadTokenizer(source, vocab_size);
}

std::string DescribeTokenizerSource(const model::TokenizerSource& source) {
  using Kind = model::TokenizerSource::Kind;
  const std::string where = source.path.empty() ? "embedded" : source.path;
  switch (source.kind) {
    case Kind::kNone:
      return "none";
    case Kind::kSentencePieceFile:
      return absl::StrCat("sentencepiece (", where, ")");
    case Kind::kLlama2cFile:
      return absl::StrCat("sentencepiece from llama2.c vocabulary (", where, ")");
    case Kind::kHfTokenizerJson:
      return absl::StrCat("bpe from tokenizer.json (", where, ")");
    case Kind::kGguf:
      return source.gguf.model == "gpt2"
                 ? absl::StrCat("byte-level bpe (gguf gpt2, pre=", source.gguf.pre, ", ",
                                source.gguf.tokens.size(), " tokens)")
                 : absl::StrCat("sentencepiece (gguf ", source.gguf.model, ", ",
                                source.gguf.tokens.size(), " tokens)");
  }
  return "unknown";
}

}  // namespace engine
