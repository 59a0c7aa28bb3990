// BPE tokenizer pipeline (see bpe_tokenizer.h). Added tokens are cut out the way Hugging Face's
// AddedVocabulary does: non-normalized ones from the raw text, then normalized ones (by their
// normalized content) from each normalized fragment.
#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/special_tokens.h"
#include "tokenizer/utf8.h"

namespace engine::tokenizer {
namespace {

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

class BpeTokenizer final : public Tokenizer {
 public:
  absl::Status Init(BpeTokenizerConfig config);

  absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                              const EncodeOptions& options) const override;
  absl::StatusOr<std::string> Decode(std::span<const TokenId> tokens) const override;
  absl::StatusOr<std::string> TokenBytes(TokenId previous, TokenId token) const override;
  bool IsControl(TokenId token) const override {
    if (!InRange(token)) return false;
    const int a = added_index_[token];
    return (a >= 0 && added_[a].control) || token == bos_ || token == eos_;
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(tokens_.size()); }
  TokenId bos_id() const override { return bos_; }
  TokenId eos_id() const override { return eos_; }
  bool IsEndOfGeneration(TokenId token) const override {
    return end_of_generation_.contains(token);
  }
  TokenId FindSpecialToken(std::string_view text) const override {
    const auto it = special_by_text_.find(absl::string_view(text.data(), text.size()));
    return it == special_by_text_.end() ? -1 : it->second;
  }
  std::string_view kind() const override { return "bpe"; }

 private:
  bool InRange(TokenId t) const { return t >= 0 && t < static_cast<TokenId>(tokens_.size()); }
  absl::Status CheckToken(TokenId t) const {
    if (InRange(t)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": token id ", t, " is outside the vocabulary of ", tokens_.size()));
  }
  std::string Normalize(std::string_view text) const;
  std::string DecodeOne(TokenId token) const;
  void AppendTokenBytes(TokenId previous, TokenId token, std::string* out) const;
  absl::Status EncodeNormalized(std::string_view text, bool first, bool parse_special,
                                std::vector<TokenId>* out) const;

  std::string source_;
  std::vector<std::string> tokens_;
  std::vector<BpeAddedToken> added_;
  std::vector<int> added_index_;  // token id -> index into added_, or -1
  BpeModel model_;
  std::vector<BpeNormalizerStep> normalizer_;
  PreTokenizer pre_tokenizer_;
  BpeDecoderOptions decoder_;
  std::vector<std::string> decoded_;  // token id -> bytes when not the first visible token
  TokenId bos_ = -1;
  TokenId eos_ = -1;
  bool add_bos_ = false;
  // [normalized][with special tokens]: matchers for the raw / normalized text.
  SpecialTokenMatcher matchers_[2][2];
  absl::flat_hash_map<std::string, TokenId> special_by_text_;
  absl::flat_hash_set<TokenId> end_of_generation_;
};

absl::Status BpeTokenizer::Init(BpeTokenizerConfig config) {
  source_ = std::move(config.source);
  tokens_ = std::move(config.tokens);
  added_ = std::move(config.added_tokens);
  normalizer_ = std::move(config.normalizer);
  pre_tokenizer_ = std::move(config.pre_tokenizer);
  decoder_ = std::move(config.decoder);
  add_bos_ = config.add_bos;
  if (tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": the vocabulary is empty"));
  }
  const auto check_id = [&](TokenId id, const char* what) -> absl::Status {
    if (id < -1 || id >= static_cast<TokenId>(tokens_.size())) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": ", what, " ", id, " is outside the vocabulary of ", tokens_.size()));
    }
    return absl::OkStatus();
  };
  ENGINE_RETURN_IF_ERROR(check_id(config.bos_id, "BOS id"));
  ENGINE_RETURN_IF_ERROR(check_id(config.eos_id, "EOS id"));
  ENGINE_RETURN_IF_ERROR(check_id(config.model.unk_id, "unknown-token id"));
  bos_ = config.bos_id;
  eos_ = config.eos_id;

  added_index_.assign(tokens_.size(), -1);
  absl::flat_hash_set<TokenId> never_produce;
  for (size_t i = 0; i < added_.size(); ++i) {
    BpeAddedToken& a = added_[i];
    ENGINE_RETURN_IF_ERROR(check_id(a.id, "added token id"));
    if (a.id < 0 || a.content.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source_, ": added token ", i, " has no id or no content"));
    }
    added_index_[a.id] = static_cast<int>(i);
    never_produce.insert(a.id);
    const std::string match_text = a.normalized ? Normalize(a.content) : a.content;
    for (int with_special = 0; with_special < 2; ++with_special) {
      if (a.special && !with_special) continue;
      matchers_[a.normalized][with_special].Add(match_text, a.id, a.lstrip, a.rstrip);
    }
    special_by_text_.emplace(a.content, a.id);
    if (a.control && std::find(kEndOfGenerationTexts.begin(), kEndOfGenerationTexts.end(),
                               a.content) != kEndOfGenerationTexts.end()) {
      end_of_generation_.insert(a.id);
    }
  }
  if (eos_ >= 0) end_of_generation_.insert(eos_);

  ENGINE_ASSIGN_OR_RETURN(
      model_, BpeModel::Create(tokens_, config.merges, config.model, never_produce, source_));

  decoded_.resize(tokens_.size());
  for (size_t i = 0; i < tokens_.size(); ++i) decoded_[i] = DecodeOne(static_cast<TokenId>(i));
  return absl::OkStatus();
}

std::string BpeTokenizer::Normalize(std::string_view text) const {
  std::string s(text);
  for (const BpeNormalizerStep& step : normalizer_) {
    if (step.kind == BpeNormalizerStep::Kind::kPrepend) {
      if (!s.empty()) s.insert(0, step.text);
      continue;
    }
    auto matches = step.regex->FindAll(s);
    if (!matches.ok() || matches->empty()) continue;  // s is valid UTF-8, so only "no match"
    std::string out;
    size_t pos = 0;
    for (const auto& [b, e] : *matches) {
      out.append(s, pos, b - pos);
      out += step.content;
      pos = e;
    }
    out.append(s, pos, std::string::npos);
    s = std::move(out);
  }
  return s;
}

// The bytes of a token in the middle of a text (no start-of-text stripping).
std::string BpeTokenizer::DecodeOne(TokenId token) const {
  const int a = added_index_[token];
  if (a >= 0) return added_[a].control ? std::string() : added_[a].content;
  const std::string& text = tokens_[token];
  if (decoder_.byte_fallback) {
    if (const int b = ParseBytePiece(text); b >= 0) return std::string(1, static_cast<char>(b));
  }
  std::string out;
  if (!decoder_.byte_level || !ByteLevelDecode(text, &out)) out = text;
  for (const auto& [from, to] : decoder_.replacements) ReplaceAll(&out, from, to);
  int start = 0;
  while (start < decoder_.strip_each_start && start < static_cast<int>(out.size()) &&
         out[start] == decoder_.strip_char) {
    ++start;
  }
  int stop = 0;
  while (stop < decoder_.strip_each_stop && start + stop < static_cast<int>(out.size()) &&
         out[out.size() - 1 - stop] == decoder_.strip_char) {
    ++stop;
  }
  return out.substr(start, out.size() - start - stop);
}

void BpeTokenizer::AppendTokenBytes(TokenId previous, TokenId token, std::string* out) const {
  std::string_view bytes = decoded_[token];
  if (previous < 0 && added_index_[token] < 0) {
    for (int i = 0;
         i < decoder_.strip_first && !bytes.empty() && bytes.front() == decoder_.strip_char; ++i) {
      bytes.remove_prefix(1);
    }
  }
  out->append(bytes);
}

absl::Status BpeTokenizer::EncodeNormalized(std::string_view text, bool first, bool parse_special,
                                            std::vector<TokenId>* out) const {
  const SpecialTokenMatcher& matcher = matchers_[1][parse_special];
  const std::vector<Fragment> fragments =
      matcher.empty() ? std::vector<Fragment>{{text, -1}} : matcher.Split(text);
  std::vector<std::string> words;
  for (const Fragment& f : fragments) {
    if (f.id >= 0) {
      out->push_back(f.id);
      continue;
    }
    words.clear();
    const bool at_start = first && f.text.data() == text.data();
    ENGINE_RETURN_IF_ERROR(pre_tokenizer_.Run(f.text, at_start, &words));
    for (const std::string& w : words) model_.EncodeWord(w, out);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenId>> BpeTokenizer::Encode(std::string_view text,
                                                          const EncodeOptions& options) const {
  if (const size_t bad = FindInvalidUtf8(text); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": text to encode is not valid UTF-8 at byte offset ", bad));
  }
  std::vector<TokenId> out;
  if (options.add_bos && add_bos_ && bos_ >= 0) out.push_back(bos_);
  const SpecialTokenMatcher& matcher = matchers_[0][options.parse_special];
  const std::vector<Fragment> fragments =
      matcher.empty() ? std::vector<Fragment>{{text, -1}} : matcher.Split(text);
  for (const Fragment& f : fragments) {
    if (f.id >= 0) {
      out.push_back(f.id);
      continue;
    }
    const bool first = f.text.data() == text.data();
    if (normalizer_.empty()) {
      ENGINE_RETURN_IF_ERROR(EncodeNormalized(f.text, first, options.parse_special, &out));
    } else {
      const std::string normalized = Normalize(f.text);
      ENGINE_RETURN_IF_ERROR(EncodeNormalized(normalized, first, options.parse_special, &out));
    }
  }
  return out;
}

absl::StatusOr<std::string> BpeTokenizer::Decode(std::span<const TokenId> tokens) const {
  std::string bytes;
  TokenId previous = -1;
  for (const TokenId t : tokens) {
    ENGINE_RETURN_IF_ERROR(CheckToken(t));
    if (IsControl(t)) continue;
    AppendTokenBytes(previous, t, &bytes);
    previous = t;
  }
  std::string text;
  AppendSanitizedUtf8(bytes, /*final=*/true, &text);
  return text;
}

absl::StatusOr<std::string> BpeTokenizer::TokenBytes(TokenId previous, TokenId token) const {
  ENGINE_RETURN_IF_ERROR(CheckToken(token));
  if (previous >= 0) ENGINE_RETURN_IF_ERROR(CheckToken(previous));
  if (IsControl(token)) return std::string();
  std::string out;
  AppendTokenBytes(previous, token, &out);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateBpeTokenizer(BpeTokenizerConfig config) {
  auto tokenizer = std::make_unique<BpeTokenizer>();
  ENGINE_RETURN_IF_ERROR(tokenizer->Init(std::move(config)));
  return tokenizer;
}

absl::StatusOr<BpeTokenizerConfig> BpeConfigFromGguf(const GgufVocabSpec& vocab,
                                                     const std::string& source) {
  BpeTokenizerConfig c;
  c.source = source;
  const size_t n = vocab.tokens.size();
  if (n == 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tokenizer.ggml.tokens is empty"));
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": tokenizer.ggml.token_type has ",
                                                   vocab.token_types.size(), " entries, expected ",
                                                   n));
  }
  if (vocab.merges.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": tokenizer.ggml.merges is missing (required for model gpt2)"));
  }
  c.tokens = vocab.tokens;
  c.merges.reserve(vocab.merges.size());
  for (size_t i = 0; i < vocab.merges.size(); ++i) {
    const std::string& m = vocab.merges[i];
    // Search from 1 so that a first part starting with a space still splits (llama.cpp does).
    const size_t space = m.find(' ', 1);
    if (space == std::string::npos || space + 1 >= m.size()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": tokenizer.ggml.merges[", i,
                                                     "] is '", m, "', expected 'left right'"));
    }
    c.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }
  for (size_t i = 0; i < n; ++i) {
    const int32_t type = vocab.token_types.empty() ? 1 : vocab.token_types[i];
    if (type < 1 || type > 6) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": token ", i, " ('", vocab.tokens[i],
                                                     "') has token type ", type,
                                                     ", expected 1..6"));
    }
    const bool listed =
        static_cast<int32_t>(i) == vocab.bos_id || static_cast<int32_t>(i) == vocab.eos_id;
    if (type == 2 || type == 3 || type == 4 || (vocab.token_types.empty() && listed)) {
      if (vocab.tokens[i].empty()) continue;
      BpeAddedToken a;
      a.id = static_cast<TokenId>(i);
      a.content = vocab.tokens[i];
      a.special = true;
      a.control = type != 4;  // user-defined tokens are text (llama.cpp prints them)
      c.added_tokens.push_back(std::move(a));
    }
  }
  bool ignore_merges = false;
  ENGINE_ASSIGN_OR_RETURN(c.pre_tokenizer, PreTokenizerForGgufPre(vocab.pre, &ignore_merges));
  c.model.byte_level = true;
  c.model.ignore_merges = ignore_merges;
  c.model.unk_id = -1;  // every byte has a token; llama.cpp drops what has none
  c.decoder.byte_level = true;
  c.bos_id = vocab.bos_id;
  c.eos_id = vocab.eos_id;
  c.add_bos = vocab.add_bos;
  return c;
}

}  // namespace engine::tokenizer
