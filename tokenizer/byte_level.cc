// GPT-2 byte-level mapping (see byte_level.h), built once from the three printable ranges of
// openai/gpt-2 encoder.py: '!'..'~', '¡'..'¬', '®'..'ÿ'.
#include "tokenizer/byte_level.h"

#include "tokenizer/utf8.h"

namespace engine::tokenizer {
namespace {

struct Tables {
  std::array<uint32_t, 256> byte_to_cp{};
  std::array<int16_t, 512> cp_to_byte{};  // every mapped code point is < 0x144
};

const Tables& GetTables() {
  static const Tables tables = [] {
    Tables t;
    t.cp_to_byte.fill(-1);
    const auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      t.byte_to_cp[b] = printable(b) ? static_cast<uint32_t>(b) : next++;
      t.cp_to_byte[t.byte_to_cp[b]] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return tables;
}

}  // namespace

const std::array<uint32_t, 256>& ByteToCodePoint() { return GetTables().byte_to_cp; }

std::string ByteLevelEncode(std::string_view bytes) {
  const auto& table = GetTables().byte_to_cp;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) AppendCodePoint(table[static_cast<uint8_t>(c)], &out);
  return out;
}

bool ByteLevelDecode(std::string_view text, std::string* bytes) {
  const auto& table = GetTables().cp_to_byte;
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp = 0;
    const size_t n = DecodeCodePoint(text.substr(pos), &cp);
    if (n == 0 || cp >= table.size() || table[cp] < 0) return false;
    bytes->push_back(static_cast<char>(table[cp]));
    pos += n;
  }
  return true;
}

int ParseBytePiece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]);
  const int lo = hex(piece[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace engine::tokenizer
