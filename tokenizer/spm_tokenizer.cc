// SentencePiece tokenizer (see spm_tokenizer.h). Decoding follows sentencepiece's
// SentencePieceProcessor::Decode: control pieces are invisible, <unk> prints as unk_surface,
// byte pieces are raw bytes, "▁" is a space, and one leading "▁" of the first visible piece is
// dropped when the model adds a dummy prefix.
#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/spm_processor.h"
#include "tokenizer/utf8.h"

namespace engine::tokenizer {
namespace {

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

class SpmTokenizer final : public Tokenizer {
 public:
  absl::Status Init(SpmModelProto model, std::string library_bytes, bool add_bos,
                    const std::string& source);

  absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                              const EncodeOptions& options) const override;
  absl::StatusOr<std::string> Decode(std::span<const TokenId> tokens) const override;
  absl::StatusOr<std::string> TokenBytes(TokenId previous, TokenId token) const override;
  bool IsControl(TokenId token) const override {
    return InRange(token) && (pieces_[token].type == kSpmControl || token == bos_ || token == eos_);
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(pieces_.size()); }
  TokenId bos_id() const override { return bos_; }
  TokenId eos_id() const override { return eos_; }
  bool IsEndOfGeneration(TokenId token) const override {
    return end_of_generation_.contains(token);
  }
  TokenId FindSpecialToken(std::string_view text) const override {
    const auto it = special_by_text_.find(absl::string_view(text.data(), text.size()));
    return it == special_by_text_.end() ? -1 : it->second;
  }
  std::string_view kind() const override { return "sentencepiece"; }

 private:
  bool InRange(TokenId t) const { return t >= 0 && t < static_cast<TokenId>(pieces_.size()); }
  absl::Status CheckToken(TokenId t) const {
    if (InRange(t)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": token id ", t, " is outside the vocabulary of ", pieces_.size()));
  }
  void AppendTokenBytes(TokenId previous, TokenId token, std::string* out) const;

  std::string source_;
  SpmProcessor processor_;
  std::vector<SpmPiece> pieces_;
  std::vector<int16_t> byte_value_;  // -1 unless a byte piece
  TokenId bos_ = -1;
  TokenId eos_ = -1;
  bool add_bos_ = true;
  bool strip_first_space_ = true;
  std::string unk_surface_;
  SpecialTokenMatcher specials_;
  absl::flat_hash_map<std::string, TokenId> special_by_text_;
  absl::flat_hash_set<TokenId> end_of_generation_;
};

absl::Status SpmTokenizer::Init(SpmModelProto model, std::string library_bytes, bool add_bos,
                                const std::string& source) {
  source_ = source;
  if (model.treat_whitespace_as_suffix) {
    return absl::UnimplementedError(
        absl::StrCat(source, ": treat_whitespace_as_suffix models are not supported"));
  }
  // sentencepiece indexes pieces in a trie that cannot hold empty keys or NUL bytes (its
  // builder throws; found by fuzzing).
  for (size_t i = 0; i < model.pieces.size(); ++i) {
    const std::string& piece = model.pieces[i].piece;
    if (piece.empty() || piece.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": piece ", i, piece.empty() ? " is empty" : " contains a NUL byte"));
    }
  }
  if (const std::string error = processor_.Load(library_bytes); !error.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": sentencepiece rejected the model: ", error));
  }
  if (processor_.piece_count() != static_cast<int>(model.pieces.size())) {
    return absl::InternalError(absl::StrCat(source, ": sentencepiece has ",
                                            processor_.piece_count(), " pieces, expected ",
                                            model.pieces.size()));
  }
  pieces_ = std::move(model.pieces);
  const auto id_or_none = [&](int32_t id) { return InRange(id) ? id : -1; };
  bos_ = id_or_none(model.bos_id);
  eos_ = id_or_none(model.eos_id);
  add_bos_ = add_bos;
  // sentencepiece strips the first piece's leading space only in these two cases.
  strip_first_space_ = model.add_dummy_prefix || model.remove_extra_whitespaces;
  unk_surface_ = model.unk_surface;

  byte_value_.assign(pieces_.size(), -1);
  for (size_t i = 0; i < pieces_.size(); ++i) {
    const SpmPiece& p = pieces_[i];
    if (p.type == kSpmByte) {
      const int b = ParseBytePiece(p.piece);
      if (b < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": byte piece ", i, " is '", p.piece, "', expected <0xNN>"));
      }
      byte_value_[i] = static_cast<int16_t>(b);
    }
    if (p.type == kSpmControl || p.type == kSpmUserDefined || p.type == kSpmUnknown) {
      specials_.Add(p.piece, static_cast<TokenId>(i));
      special_by_text_.emplace(p.piece, static_cast<TokenId>(i));
      if (p.type != kSpmUnknown &&
          std::find(kEndOfGenerationTexts.begin(), kEndOfGenerationTexts.end(), p.piece) !=
              kEndOfGenerationTexts.end()) {
        end_of_generation_.insert(static_cast<TokenId>(i));
      }
    }
  }
  if (eos_ >= 0) end_of_generation_.insert(eos_);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenId>> SpmTokenizer::Encode(std::string_view text,
                                                          const EncodeOptions& options) const {
  if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": text to encode is not valid UTF-8 at byte offset ", bad));
  }
  std::vector<TokenId> out;
  if (options.add_bos && add_bos_ && bos_ >= 0) out.push_back(bos_);
  const std::vector<Fragment> fragments =
      options.parse_special ? specials_.Split(text) : std::vector<Fragment>{{text, -1}};
  std::vector<int> ids;
  for (const Fragment& f : fragments) {
    if (f.id >= 0) {
      out.push_back(f.id);
      continue;
    }
    ids.clear();
    // Each raw fragment gets its own dummy prefix, as llama.cpp does after a special token.
    if (const std::string error = processor_.Encode(f.text, &ids); !error.empty()) {
      return absl::InternalError(absl::StrCat(source_, ": sentencepiece Encode failed: ", error));
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

void SpmTokenizer::AppendTokenBytes(TokenId previous, TokenId token, std::string* out) const {
  if (IsControl(token)) return;
  const SpmPiece& p = pieces_[token];
  if (p.type == kSpmUnknown) {
    out->append(unk_surface_);
    return;
  }
  if (byte_value_[token] >= 0) {
    out->push_back(static_cast<char>(byte_value_[token]));
    return;
  }
  std::string_view piece = p.piece;
  if (previous < 0 && strip_first_space_ && piece.substr(0, kSpace.size()) == kSpace) {
    piece.remove_prefix(kSpace.size());
  }
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t hit = piece.find(kSpace, pos);
    if (hit == std::string_view::npos) {
      out->append(piece.substr(pos));
      break;
    }
    out->append(piece.substr(pos, hit - pos));
    out->push_back(' ');
    pos = hit + kSpace.size();
  }
}

absl::StatusOr<std::string> SpmTokenizer::Decode(std::span<const TokenId> tokens) const {
  std::string bytes;
  TokenId previous = -1;
  for (const TokenId t : tokens) {
    ENGINE_RETURN_IF_ERROR(CheckToken(t));
    AppendTokenBytes(previous, t, &bytes);
    if (!IsControl(t)) previous = t;
  }
  std::string text;
  AppendSanitizedUtf8(bytes, /*final=*/true, &text);
  return text;
}

absl::StatusOr<std::string> SpmTokenizer::TokenBytes(TokenId previous, TokenId token) const {
  ENGINE_RETURN_IF_ERROR(CheckToken(token));
  if (previous >= 0) ENGINE_RETURN_IF_ERROR(CheckToken(previous));
  std::string out;
  AppendTokenBytes(previous, token, &out);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizer(SpmModelProto model,
                                                              std::string library_bytes,
                                                              bool add_bos,
                                                              const std::string& source) {
  auto tokenizer = std::make_unique<SpmTokenizer>();
  ENGINE_RETURN_IF_ERROR(
      tokenizer->Init(std::move(model), std::move(library_bytes), add_bos, source));
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizerFromModelBytes(
    std::string_view bytes, const std::string& source) {
  ENGINE_ASSIGN_OR_RETURN(SpmModelProto model, ParseSpmModelProto(bytes, source));
  std::string library_bytes(bytes);
  for (size_t i = 0; i < model.pieces.size(); ++i) {
    if (model.pieces[i].type == kSpmUserDefined) {
      ENGINE_RETURN_IF_ERROR(PatchPieceType(model, i, kSpmControl, &library_bytes));
    }
  }
  return CreateSpmTokenizer(std::move(model), std::move(library_bytes), /*add_bos=*/true, source);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSpmTokenizerFromModel(SpmModelProto model,
                                                                       bool add_bos,
                                                                       const std::string& source) {
  SpmModelProto for_library = model;
  for (SpmPiece& p : for_library.pieces) {
    if (p.type == kSpmUserDefined) p.type = kSpmControl;
  }
  return CreateSpmTokenizer(std::move(model), SerializeSpmModelProto(for_library), add_bos, source);
}

}  // namespace engine::tokenizer
