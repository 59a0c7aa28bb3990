// A compiled PCRE2 regular expression in UTF + UCP mode (\p{L}, \s, \w follow Unicode), used by
// the BPE pre-tokenizers and normalizers. RAII over pcre2_code; compile errors become Status.
#ifndef FP4LM_TOKENIZER_UNICODE_REGEX_H_
#define FP4LM_TOKENIZER_UNICODE_REGEX_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace engine::tokenizer {

class UnicodeRegex {
 public:
  // `pattern` is PCRE2 syntax (the Oniguruma/fancy-regex patterns of tokenizer.json use the
  // same constructs: \p{..}, look-ahead, (?i:..)).
  static absl::StatusOr<UnicodeRegex> Compile(std::string_view pattern);

  UnicodeRegex(UnicodeRegex&&) noexcept;
  UnicodeRegex& operator=(UnicodeRegex&&) noexcept;
  ~UnicodeRegex();

  // All non-overlapping matches in `subject` (which must be valid UTF-8), left to right, as
  // [begin, end) byte offsets. An empty match advances by one character and is not reported.
  absl::StatusOr<std::vector<std::pair<size_t, size_t>>> FindAll(std::string_view subject) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  UnicodeRegex(std::string pattern, std::unique_ptr<Code> code);

  std::string pattern_;
  std::unique_ptr<Code> code_;
};

}  // namespace engine::tokenizer

#endif  // FP4LM_TOKENIZER_UNICODE_REGEX_H_
