// The BPE implementation of Tokenizer, configured as a Hugging Face tokenizer pipeline:
// added/special tokens -> normalizer -> pre-tokenizer -> BPE model -> decoder. GGUF "gpt2"
// vocabularies (byte-level, e.g. SmolLM2) and tokenizer.json BPE models both become a
// BpeTokenizerConfig.
#ifndef FP4LM_TOKENIZER_BPE_TOKENIZER_H_
#define FP4LM_TOKENIZER_BPE_TOKENIZER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_regex.h"

namespace engine::tokenizer {

// One normalizer step (Hugging Face Prepend / Replace).
struct BpeNormalizerStep {
  enum class Kind { kPrepend, kReplace } kind = Kind::kReplace;
  std::string text;                           // Prepend: the prefix
  std::shared_ptr<const UnicodeRegex> regex;  // Replace: the pattern
  std::string content;                        // Replace: the replacement
};

// A token matched as a whole in the text instead of going through BPE.
struct BpeAddedToken {
  TokenId id = -1;
  std::string content;
  bool special = true;      // recognised only with EncodeOptions::parse_special (else always)
  bool control = true;      // produces no text when decoded
  bool normalized = false;  // matched in normalized text, by its normalized content
  bool lstrip = false;
  bool rstrip = false;
};

// Per-token decoding (Hugging Face decoders that can run token by token, which TextStreamer
// needs).
struct BpeDecoderOptions {
  bool byte_level = false;     // ByteLevel: GPT-2 mapped text -> bytes
  bool byte_fallback = false;  // ByteFallback: <0xNN> -> the byte
  std::vector<std::pair<std::string, std::string>> replacements;  // Replace, in order
  // Strip after Fuse (or Metaspace): up to `strip_first` `strip_char`s at the start of the text.
  int strip_first = 0;
  // Strip before any Fuse: applied to every token.
  int strip_each_start = 0;
  int strip_each_stop = 0;
  char strip_char = ' ';
};

struct BpeTokenizerConfig {
  std::string source;               // for error messages
  std::vector<std::string> tokens;  // id -> token text as the model stores it
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  BpeModelOptions model;
  std::vector<BpeNormalizerStep> normalizer;
  PreTokenizer pre_tokenizer;
  BpeDecoderOptions decoder;
  std::vector<BpeAddedToken> added_tokens;
  TokenId bos_id = -1;
  TokenId eos_id = -1;
  bool add_bos = false;
};

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateBpeTokenizer(BpeTokenizerConfig config);

// GGUF tokenizer.ggml.* with model "gpt2": byte-level BPE, pre-tokenizer chosen by `pre`, token
// types 2/3 (unknown/control) invisible special tokens, 4 (user-defined) special tokens that
// decode to their text.
absl::StatusOr<BpeTokenizerConfig> BpeConfigFromGguf(const GgufVocabSpec& vocab,
                                                     const std::string& source);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_BPE_TOKENIZER_H_
