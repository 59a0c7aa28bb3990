// UTF-8 validation and sanitizing (see utf8.h). Follows the well-formed byte sequence table of
// the Unicode standard (Table 3-7), so overlongs and surrogates count as invalid.
#include "tokenizer/utf8.h"

namespace engine::tokenizer {
namespace {

// Number of bytes a lead byte announces and the allowed range of the second byte (the
// remaining continuation bytes are always 0x80..0xBF). Length 0 = not a lead byte.
struct LeadInfo {
  size_t length;
  uint8_t second_lo;
  uint8_t second_hi;
};

LeadInfo Lead(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// How many leading bytes of `bytes` form a valid (possibly incomplete) prefix of one sequence.
// Sets *complete when that prefix is the whole sequence.
size_t ValidPrefix(std::string_view bytes, bool* complete) {
  *complete = false;
  if (bytes.empty()) return 0;
  const LeadInfo lead = Lead(static_cast<uint8_t>(bytes[0]));
  if (lead.length == 0) return 0;
  size_t n = 1;
  while (n < lead.length && n < bytes.size()) {
    const uint8_t b = static_cast<uint8_t>(bytes[n]);
    const uint8_t lo = n == 1 ? lead.second_lo : 0x80;
    const uint8_t hi = n == 1 ? lead.second_hi : 0xBF;
    if (b < lo || b > hi) return n;
    ++n;
  }
  *complete = n == lead.length;
  return n;
}

}  // namespace

size_t ValidSequenceLength(std::string_view bytes) {
  bool complete = false;
  const size_t n = ValidPrefix(bytes, &complete);
  return complete ? n : 0;
}

size_t FindInvalidUtf8(std::string_view bytes) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t n = ValidSequenceLength(bytes.substr(pos));
    if (n == 0) return pos;
    pos += n;
  }
  return std::string_view::npos;
}

size_t AppendSanitizedUtf8(std::string_view bytes, bool final, std::string* out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    bool complete = false;
    const size_t n = ValidPrefix(bytes.substr(pos), &complete);
    if (complete) {
      out->append(bytes.data() + pos, n);
      pos += n;
    } else if (!final && pos + n == bytes.size() && n > 0) {
      break;  // may still be completed by the next bytes
    } else {
      out->append(kReplacementChar);
      pos += n == 0 ? 1 : n;
    }
  }
  return pos;
}

void AppendCodePoint(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t DecodeCodePoint(std::string_view bytes, uint32_t* cp) {
  const size_t n = ValidSequenceLength(bytes);
  if (n == 0) return 0;
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])); };
  switch (n) {
    case 1:
      *cp = b(0);
      break;
    case 2:
      *cp = ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
      break;
    case 3:
      *cp = ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
      break;
    default:
      *cp = ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
  return n;
}

}  // namespace engine::tokenizer
