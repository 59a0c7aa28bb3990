// Pre-tokenization: cuts (normalized) text into the words that BPE merges within. A sequence of
// steps, each mapping a list of pieces to a new list: regex splits with Hugging Face's split
// behaviours, ByteLevel's prefix space, and Metaspace. llama.cpp's `pre` names map to the
// regex lists of llama.cpp's llama-vocab.cpp.
#ifndef FP4LM_TOKENIZER_PRE_TOKENIZER_H_
#define FP4LM_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tokenizer/unicode_regex.h"

namespace engine::tokenizer {

// What happens to the matches of a split pattern (Hugging Face SplitDelimiterBehavior).
enum class SplitBehavior {
  kIsolated,            // matches and the text between them become separate pieces
  kRemoved,             // matches are dropped
  kMergedWithPrevious,  // a match is appended to the piece before it
  kMergedWithNext,      // a match is prepended to the piece after it
  kContiguous,          // consecutive matches form one piece
};

enum class PrependScheme { kAlways, kFirst, kNever };

class PreTokenizer {
 public:
  void AddRegexSplit(UnicodeRegex regex, SplitBehavior behavior, bool invert);
  // Hugging Face ByteLevel(add_prefix_space=true): a piece not starting with ' ' gets one.
  void AddPrefixSpace();
  // Hugging Face Metaspace: ' ' -> replacement, optional prepended replacement, optional split
  // before each replacement.
  void AddMetaspace(std::string replacement, PrependScheme scheme, bool split);

  bool empty() const { return steps_.empty(); }

  // `first_fragment`: the text starts the input (not after a special token), which matters for
  // PrependScheme::kFirst.
  absl::Status Run(std::string_view text, bool first_fragment,
                   std::vector<std::string>* words) const;

 private:
  struct Step {
    enum class Kind { kRegexSplit, kPrefixSpace, kMetaspace };
    Kind kind = Kind::kRegexSplit;
    std::shared_ptr<const UnicodeRegex> regex;
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    std::string replacement;
    PrependScheme scheme = PrependScheme::kAlways;
    bool split = false;
  };
  std::vector<Step> steps_;
};

// The GPT-2 pattern (Hugging Face ByteLevel's use_regex=true).
inline constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// Pre-tokenizer of a GGUF "gpt2" vocabulary from tokenizer.ggml.pre. Sets *ignore_merges for the
// llama3 family (llama.cpp emits a word that is itself a token without merging).
absl::StatusOr<PreTokenizer> PreTokenizerForGgufPre(std::string_view pre, bool* ignore_merges);

// A regex that matches `literal` exactly (for Hugging Face {"String": ...} patterns).
std::string QuoteRegex(std::string_view literal);

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_PRE_TOKENIZER_H_
