// Finds special-token text (e.g. "<|im_start|>", "<s>") in input text and cuts the text into raw
// fragments and token ids. Used only when the caller asks for special tokens to be parsed (or,
// for Hugging Face non-special added tokens, always), never inside ordinary BPE merging.
#ifndef FP4LM_TOKENIZER_SPECIAL_TOKENS_H_
#define FP4LM_TOKENIZER_SPECIAL_TOKENS_H_

#include <array>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {

// Texts that end a turn in the common chat formats; IsEndOfGeneration() is true for these when
// the vocabulary has them as special tokens (in addition to EOS).
inline constexpr std::array<std::string_view, 5> kEndOfGenerationTexts = {
    "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>", "</s>"};

// One piece of split text: raw text (id < 0) or a matched token.
struct Fragment {
  std::string_view text;
  TokenId id = -1;
};

class SpecialTokenMatcher {
 public:
  // `lstrip`/`rstrip` (Hugging Face added-token flags) make a match swallow the ASCII
  // whitespace before/after it.
  void Add(std::string text, TokenId id, bool lstrip = false, bool rstrip = false);
  bool empty() const { return entries_.empty(); }

  // Leftmost match first; at one position the longest token wins. Empty raw fragments are
  // dropped. The views point into `text`.
  std::vector<Fragment> Split(std::string_view text) const;

 private:
  struct Entry {
    std::string text;
    TokenId id;
    bool lstrip;
    bool rstrip;
  };
  std::vector<Entry> entries_;  // in the order added
  // Per first byte: indices into entries_ grouped by text length, longest first (the order
  // added within a length). Add is O(log n): a vocabulary of 100k special tokens loads in
  // milliseconds, where re-sorting on every Add took minutes.
  std::array<std::map<size_t, std::vector<int>, std::greater<>>, 256> by_first_byte_{};
};

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_SPECIAL_TOKENS_H_
