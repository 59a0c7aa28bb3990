// llama2.c and GGUF vocabularies -> SentencePiece ModelProto (see spm_convert.h). Everything is
// validated here, with messages naming the source and the token, because sentencepiece's own
// load errors do not say which file they came from.
#include "tokenizer/spm_convert.h"

#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "kernels/core/status_macros.h"

namespace engine::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string BytePiece(int byte) { return absl::StrFormat("<0x%02X>", byte); }

// Duplicated pieces make sentencepiece refuse the model; say which ids collide.
absl::Status CheckUniquePieces(const SpmModelProto& m, const std::string& source) {
  absl::flat_hash_map<std::string_view, size_t> seen;
  seen.reserve(m.pieces.size());
  for (size_t i = 0; i < m.pieces.size(); ++i) {
    const std::string& p = m.pieces[i].piece;
    if (p.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": token ", i, " is empty"));
    }
    auto [it, inserted] = seen.emplace(p, i);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": tokens ", it->second, " and ", i, " are both '", p, "'"));
    }
  }
  return absl::OkStatus();
}

class ByteReader {
 public:
  ByteReader(std::string_view bytes, const std::string& source) : b_(bytes), source_(source) {}
  size_t remaining() const { return b_.size() - pos_; }
  size_t pos() const { return pos_; }

  template <typename T>
  absl::StatusOr<T> Read(std::string_view what) {
    if (remaining() < sizeof(T)) {
      return absl::DataLossError(absl::StrCat(source_, ": truncated at byte ", pos_, " reading ",
                                              absl::string_view(what.data(), what.size()), " (",
                                              remaining(), " bytes left)"));
    }
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));  // llama2.c files are little-endian
    pos_ += sizeof(T);
    return v;
  }
  std::string_view Take(size_t n) {
    const std::string_view v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }

 private:
  std::string_view b_;
  size_t pos_ = 0;
  const std::string& source_;
};

}  // namespace

absl::StatusOr<SpmModelProto> Llama2cToSpmModel(std::string_view bytes, int32_t vocab_size,
                                                const std::string& source) {
  // 3 special pieces + 256 byte pieces come before any merged piece.
  if (vocab_size < 259) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": llama2.c vocab_size ", vocab_size,
                                                   " is below 259 (<unk>, <s>, </s>, bytes)"));
  }
  ByteReader r(bytes, source);
  ENGINE_ASSIGN_OR_RETURN(const int32_t max_len, r.Read<int32_t>("max_token_length"));
  if (max_len <= 0) {
    return absl::DataLossError(
        absl::StrCat(source, ": max_token_length is ", max_len, ", expected > 0"));
  }

  // Each record takes at least 9 bytes (score, length, one byte): a vocabulary the file cannot
  // hold is refused before `vocab_size` pieces are allocated.
  if (static_cast<uint64_t>(vocab_size) > r.remaining() / 9) {
    return absl::DataLossError(absl::StrCat(source, ": a vocabulary of ", vocab_size,
                                            " tokens needs at least ", int64_t{vocab_size} * 9,
                                            " bytes, the file has ", bytes.size()));
  }
  SpmModelProto m;
  m.pieces.resize(vocab_size);
  for (int32_t id = 0; id < vocab_size; ++id) {
    const std::string what = absl::StrCat("token ", id);
    ENGINE_ASSIGN_OR_RETURN(const float score, r.Read<float>(what + " score"));
    ENGINE_ASSIGN_OR_RETURN(const int32_t len, r.Read<int32_t>(what + " length"));
    if (!std::isfinite(score)) {
      return absl::DataLossError(absl::StrCat(source, ": ", what, " has score ", score));
    }
    if (len <= 0 || len > max_len) {
      return absl::DataLossError(
          absl::StrCat(source, ": ", what, " has length ", len, ", expected 1..", max_len));
    }
    if (static_cast<size_t>(len) > r.remaining()) {
      return absl::DataLossError(absl::StrCat(source, ": ", what, " has length ", len, " but only ",
                                              r.remaining(), " bytes remain"));
    }
    SpmPiece& p = m.pieces[id];
    const std::string_view raw = r.Take(len);
    p.piece = absl::StrReplaceAll(absl::string_view(raw.data(), raw.size()),
                                  {{" ", absl::string_view(kSpace.data(), kSpace.size())}});
    p.score = score;
  }
  if (r.remaining() != 0) {
    return absl::DataLossError(absl::StrCat(source, ": ", r.remaining(), " bytes left after ",
                                            vocab_size,
                                            " tokens (vocab_size does not match the file?)"));
  }

  // llama2.c's export wrote BOS/EOS as "\n<s>\n" and "\n</s>\n"; use the SentencePiece names.
  m.pieces[0] = {"<unk>", 0.0f, kSpmUnknown};
  m.pieces[1] = {"<s>", 0.0f, kSpmControl};
  m.pieces[2] = {"</s>", 0.0f, kSpmControl};
  for (int b = 0; b < 256; ++b) {
    SpmPiece& p = m.pieces[3 + b];
    if (p.piece != BytePiece(b)) {
      return absl::DataLossError(absl::StrCat(source, ": token ", 3 + b, " is '", p.piece,
                                              "', expected the byte piece ", BytePiece(b)));
    }
    p.type = kSpmByte;
  }
  ENGINE_RETURN_IF_ERROR(CheckUniquePieces(m, source));

  m.model_type = kSpmBpe;
  m.vocab_size = vocab_size;
  m.byte_fallback = true;
  m.unk_id = 0;
  m.bos_id = 1;
  m.eos_id = 2;
  m.pad_id = -1;
  // llama2.c's encode(): dummy prefix, no whitespace collapsing, no character mapping.
  m.normalizer_name = "identity";
  m.add_dummy_prefix = true;
  m.remove_extra_whitespaces = false;
  m.escape_whitespaces = true;
  return m;
}

absl::StatusOr<SpmModelProto> GgufLlamaToSpmModel(const GgufVocabSpec& vocab,
                                                  const std::string& source) {
  const size_t n = vocab.tokens.size();
  if (n == 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tokenizer.ggml.tokens is empty"));
  }
  if (!vocab.scores.empty() && vocab.scores.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tokenizer.ggml.scores has ",
                                                   vocab.scores.size(), " entries, expected ", n));
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tokenizer.ggml.token_type has ",
                                                   vocab.token_types.size(), " entries, expected ",
                                                   n));
  }
  const auto check_id = [&](int32_t id, const char* name) -> absl::Status {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", name, " ", id, " is outside the vocabulary of ", n));
    }
    return absl::OkStatus();
  };
  ENGINE_RETURN_IF_ERROR(check_id(vocab.bos_id, "tokenizer.ggml.bos_token_id"));
  ENGINE_RETURN_IF_ERROR(check_id(vocab.eos_id, "tokenizer.ggml.eos_token_id"));
  ENGINE_RETURN_IF_ERROR(check_id(vocab.unk_id, "tokenizer.ggml.unknown_token_id"));
  ENGINE_RETURN_IF_ERROR(check_id(vocab.pad_id, "tokenizer.ggml.padding_token_id"));

  SpmModelProto m;
  m.pieces.resize(n);
  int byte_pieces = 0;
  int32_t first_unknown = -1;
  for (size_t i = 0; i < n; ++i) {
    SpmPiece& p = m.pieces[i];
    p.piece = vocab.tokens[i];
    p.score = vocab.scores.empty() ? 0.0f : vocab.scores[i];
    if (!std::isfinite(p.score)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": token ", i, " ('", p.piece, "') has score ", p.score));
    }
    p.type = vocab.token_types.empty() ? kSpmNormal : vocab.token_types[i];
    if (p.type < kSpmNormal || p.type > kSpmByte) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": token ", i, " ('", p.piece, "') has token type ", p.type, ", expected 1..6"));
    }
    if (p.type == kSpmByte) {
      if (p.piece.size() != 6 || p.piece.compare(0, 3, "<0x") != 0 || p.piece[5] != '>') {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": byte token ", i, " is '", p.piece, "', expected <0xNN>"));
      }
      ++byte_pieces;
    }
    if (p.type == kSpmUnknown && first_unknown < 0) first_unknown = static_cast<int32_t>(i);
  }
  // Types are optional in GGUF; the ids in the metadata then say which tokens are special.
  if (vocab.token_types.empty()) {
    if (vocab.bos_id >= 0) m.pieces[vocab.bos_id].type = kSpmControl;
    if (vocab.eos_id >= 0) m.pieces[vocab.eos_id].type = kSpmControl;
  }
  // sentencepiece needs exactly one UNKNOWN piece.
  int32_t unk = vocab.unk_id >= 0 ? vocab.unk_id : first_unknown;
  if (unk < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": no unknown token (tokenizer.ggml.unknown_token_id or a type-2 token)"));
  }
  for (size_t i = 0; i < n; ++i) {
    SpmPiece& p = m.pieces[i];
    if (static_cast<int32_t>(i) == unk) {
      p.type = kSpmUnknown;
    } else if (p.type == kSpmUnknown) {
      p.type = kSpmControl;  // a second "unknown" can only be a marker
    }
  }
  if (byte_pieces != 0 && byte_pieces != 256) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", byte_pieces, " byte tokens (type 6), expected none or all 256"));
  }
  ENGINE_RETURN_IF_ERROR(CheckUniquePieces(m, source));

  m.model_type = kSpmBpe;  // llama.cpp's SPM tokenizer merges by score, i.e. SentencePiece BPE
  m.vocab_size = static_cast<int32_t>(n);
  m.byte_fallback = byte_pieces == 256;
  m.unk_id = unk;
  m.bos_id = vocab.bos_id;
  m.eos_id = vocab.eos_id;
  m.pad_id = vocab.pad_id;
  m.unk_piece = m.pieces[unk].piece;
  if (vocab.bos_id >= 0) m.bos_piece = m.pieces[vocab.bos_id].piece;
  if (vocab.eos_id >= 0) m.eos_piece = m.pieces[vocab.eos_id].piece;
  if (vocab.pad_id >= 0) m.pad_piece = m.pieces[vocab.pad_id].piece;
  m.normalizer_name = "identity";
  m.add_dummy_prefix = vocab.add_space_prefix;
  m.remove_extra_whitespaces = false;
  m.escape_whitespaces = true;
  return m;
}

}  // namespace engine::tokenizer
