// UTF-8 helpers shared by the tokenizers and TextStreamer: validation (Encode rejects invalid
// text), code point iteration, and the one sanitizing rule that Decode and TextStreamer both use
// so that streamed text is byte-for-byte the text Decode returns.
#ifndef FP4LM_TOKENIZER_UTF8_H_
#define FP4LM_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace engine::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// Length of the well-formed UTF-8 sequence at the start of `bytes` (1..4), or 0 if it is not
// well-formed (bad lead byte, bad continuation, overlong, surrogate, > U+10FFFF, or cut short).
size_t ValidSequenceLength(std::string_view bytes);

// Offset of the first byte that is not part of a well-formed sequence, or npos if all are valid.
size_t FindInvalidUtf8(std::string_view bytes);

// Appends `bytes` to `out` with every ill-formed part replaced by U+FFFD (one per maximal
// subpart, as the Unicode standard recommends). When `final` is false, a trailing sequence that
// is incomplete but could still become valid is left unconsumed. Returns the bytes consumed.
size_t AppendSanitizedUtf8(std::string_view bytes, bool final, std::string* out);

// Appends the UTF-8 encoding of a code point (which must be <= 0x10FFFF).
void AppendCodePoint(uint32_t code_point, std::string* out);

// Decodes the well-formed sequence at the start of `bytes`; returns its length (0 if invalid).
size_t DecodeCodePoint(std::string_view bytes, uint32_t* code_point);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_UTF8_H_
