// Reads a Hugging Face tokenizer.json with a BPE model into a BpeTokenizerConfig: vocab and
// merges, added tokens, and the normalizer / pre-tokenizer / decoder / post-processor parts
// that fp4lm implements. Anything else is an Unimplemented error naming the component, never a
// silently different tokenization.
#ifndef FP4LM_TOKENIZER_HF_TOKENIZER_JSON_H_
#define FP4LM_TOKENIZER_HF_TOKENIZER_JSON_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace engine::tokenizer {

absl::StatusOr<BpeTokenizerConfig> BpeConfigFromHfJson(std::string_view json,
                                                       const std::string& source,
                                                       const HfTokenizerOptions& options);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_HF_TOKENIZER_JSON_H_
