// Special-token splitting (see special_tokens.h). A scan with a first-byte filter is fast
// enough: vocabularies have tens of special tokens, not thousands (a hostile one with many
// still loads in O(n log n)).
#include "tokenizer/special_tokens.h"

#include <algorithm>

namespace engine::tokenizer {
namespace {

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

}  // namespace

void SpecialTokenMatcher::Add(std::string text, TokenId id, bool lstrip, bool rstrip) {
  if (text.empty()) return;  // an empty token would match everywhere
  const uint8_t first = static_cast<uint8_t>(text[0]);
  const size_t length = text.size();
  entries_.push_back({std::move(text), id, lstrip, rstrip});
  by_first_byte_[first][length].push_back(static_cast<int>(entries_.size() - 1));
}

std::vector<Fragment> SpecialTokenMatcher::Split(std::string_view text) const {
  std::vector<Fragment> out;
  size_t raw_begin = 0;  // start of the pending raw fragment
  size_t pos = 0;
  while (pos < text.size()) {
    const Entry* hit = nullptr;
    for (const auto& [length, indices] : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      if (length > text.size() - pos) continue;
      for (int index : indices) {
        const Entry& e = entries_[index];
        if (text.compare(pos, length, e.text) == 0) {
          hit = &e;
          break;
        }
      }
      if (hit != nullptr) break;  // longest first
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t raw_end = pos;
    if (hit->lstrip) {
      while (raw_end > raw_begin && IsAsciiSpace(text[raw_end - 1])) --raw_end;
    }
    if (raw_end > raw_begin) out.push_back({text.substr(raw_begin, raw_end - raw_begin), -1});
    out.push_back({text.substr(pos, hit->text.size()), hit->id});
    pos += hit->text.size();
    if (hit->rstrip) {
      while (pos < text.size() && IsAsciiSpace(text[pos])) ++pos;
    }
    raw_begin = pos;
  }
  if (text.size() > raw_begin) out.push_back({text.substr(raw_begin), -1});
  return out;
}

}  // namespace engine::tokenizer
