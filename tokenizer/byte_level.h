// GPT-2's reversible byte <-> code point mapping ("bytes_to_unicode"): printable bytes map to
// themselves, the other 68 bytes to U+0100.. in order, so that every byte string becomes
// printable text (a space is "Ġ", a newline "Ċ"). Byte-level BPE vocabularies are written in it.
#ifndef FP4LM_TOKENIZER_BYTE_LEVEL_H_
#define FP4LM_TOKENIZER_BYTE_LEVEL_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace engine::tokenizer {

// The code point that stands for each byte.
const std::array<uint32_t, 256>& ByteToCodePoint();

// Maps raw bytes to byte-level text (UTF-8 of the mapped code points).
std::string ByteLevelEncode(std::string_view bytes);

// The inverse. Returns false (leaving *bytes partly written) if `text` has a code point outside
// the mapping, e.g. an added token written in plain text.
bool ByteLevelDecode(std::string_view text, std::string* bytes);

// The byte of a byte-fallback piece "<0xNN>" (SentencePiece BYTE pieces, Hugging Face
// ByteFallback tokens), or -1 for any other text.
int ParseBytePiece(std::string_view piece);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_BYTE_LEVEL_H_
