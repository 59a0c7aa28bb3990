// Special-token splitting (see special_tokens.h). A scan with a first-byte filter is fast
// enough: vocabularies have tens of special tokens, not thousands.
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
  entries_.push_back({std::move(text), id, lstrip, rstrip});
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
  for (auto& list : by_first_byte_) list.clear();
  for (size_t i = 0; i < entries_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(entries_[i].text[0])].push_back(static_cast<int>(i));
  }
}

std::vector<Fragment> SpecialTokenMatcher::Split(std::string_view text) const {
  std::vector<Fragment> out;
  size_t raw_begin = 0;  // start of the pending raw fragment
  size_t pos = 0;
  while (pos < text.size()) {
    const Entry* hit = nullptr;
    for (int index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      const Entry& e = entries_[index];
      if (text.compare(pos, e.text.size(), e.text) == 0) {
        hit = &e;
        break;  // longest first
      }
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
