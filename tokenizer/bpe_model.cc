// BPE merging (see bpe_model.h). Symbols form a linked list over the initial symbol array; a
// min-heap holds candidate pairs keyed by (rank, left position). A popped pair is applied only
// if both symbols are still alive, adjacent and unchanged, so stale entries are skipped.
#include "tokenizer/bpe_model.h"

#include <queue>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace engine::tokenizer {

absl::StatusOr<BpeModel> BpeModel::Create(
    const std::vector<std::string>& tokens,
    const std::vector<std::pair<std::string, std::string>>& merges, const BpeModelOptions& options,
    const absl::flat_hash_set<TokenId>& never_produce, const std::string& source) {
  BpeModel m;
  m.options_ = options;
  absl::flat_hash_map<std::string_view, TokenId> all;  // every token, for reading merges
  all.reserve(tokens.size());
  m.vocab_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) continue;
    const TokenId id = static_cast<TokenId>(i);
    all.emplace(tokens[i], id);  // the first of duplicated texts wins, as in llama.cpp
    if (!never_produce.contains(id)) m.vocab_.emplace(tokens[i], id);
  }

  m.merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = all.find(a);
    const auto ib = all.find(b);
    const auto ir = all.find(a + b);
    if (ia == all.end() || ib == all.end() || ir == all.end()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": merge ", rank, " ('", a, "' + '", b,
                                                     "') uses or makes '",
                                                     ia == all.end()   ? a
                                                     : ib == all.end() ? b
                                                                       : a + b,
                                                     "', which is not in the vocabulary"));
    }
    if (never_produce.contains(ir->second)) continue;
    m.merges_.emplace(PairKey(ia->second, ib->second),
                      Merge{static_cast<int32_t>(rank), ir->second});
  }

  for (int b = 0; b < 256; ++b) {
    std::string text;
    if (options.byte_level) {
      AppendCodePoint(ByteToCodePoint()[b], &text);
    } else {
      text = absl::StrFormat("<0x%02X>", b);
    }
    m.byte_token_[b] = m.Lookup(text);
  }
  return m;
}

TokenId BpeModel::Lookup(std::string_view text) const {
  const auto it = vocab_.find(absl::string_view(text.data(), text.size()));
  return it == vocab_.end() ? -1 : it->second;
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<TokenId>* symbols) const {
  const auto push_unk = [&] {
    if (options_.unk_id < 0) return;  // no <unk>: drop the character (llama.cpp does too)
    if (options_.fuse_unk && !symbols->empty() && symbols->back() == options_.unk_id) return;
    symbols->push_back(options_.unk_id);
  };
  if (options_.byte_level) {
    for (const char c : word) {
      const TokenId id = byte_token_[static_cast<uint8_t>(c)];
      if (id >= 0) {
        symbols->push_back(id);
      } else {
        push_unk();
      }
    }
    return;
  }
  size_t pos = 0;
  while (pos < word.size()) {
    size_t n = ValidSequenceLength(word.substr(pos));
    if (n == 0) n = 1;  // callers pass valid UTF-8; stay safe anyway
    const std::string_view ch = word.substr(pos, n);
    pos += n;
    if (const TokenId id = Lookup(ch); id >= 0) {
      symbols->push_back(id);
      continue;
    }
    bool all_bytes = options_.byte_fallback;
    for (size_t i = 0; all_bytes && i < ch.size(); ++i) {
      all_bytes = byte_token_[static_cast<uint8_t>(ch[i])] >= 0;
    }
    if (all_bytes) {
      for (const char c : ch) symbols->push_back(byte_token_[static_cast<uint8_t>(c)]);
    } else {
      push_unk();
    }
  }
}

void BpeModel::EncodeWord(std::string_view word, std::vector<TokenId>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const TokenId whole = options_.byte_level ? Lookup(ByteLevelEncode(word)) : Lookup(word);
    if (whole >= 0) {
      out->push_back(whole);
      return;
    }
  }
  std::vector<TokenId> ids;
  InitialSymbols(word, &ids);
  const int n = static_cast<int>(ids.size());
  std::vector<int> prev(n), next(n);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }

  struct Candidate {
    int32_t rank;
    int left;
    int right;
    TokenId left_id;
    TokenId right_id;
    TokenId result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  const auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const auto it = merges_.find(PairKey(ids[left], ids[right]));
    if (it == merges_.end()) return;
    heap.push({it->second.rank, left, right, ids[left], ids[right], it->second.result});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i, i + 1);

  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right || ids[c.left] != c.left_id ||
        ids[c.right] != c.right_id) {
      continue;  // stale
    }
    ids[c.left] = c.result;
    alive[c.right] = false;
    next[c.left] = next[c.right];
    if (next[c.left] >= 0) prev[next[c.left]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }
  for (int i = 0; i >= 0 && i < n; i = next[i]) out->push_back(ids[i]);
}

}  // namespace engine::tokenizer
