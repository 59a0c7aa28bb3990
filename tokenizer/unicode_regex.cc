// PCRE2 wrapper (see unicode_regex.h). JIT-compiled when the library supports it; match data is
// allocated per call so that one compiled regex can be shared by concurrent Encode() calls.
#include "tokenizer/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tokenizer/utf8.h"

namespace engine::tokenizer {
namespace {

std::string Pcre2Message(int error_code) {
  PCRE2_UCHAR buffer[256];
  const int n = pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  if (n < 0) return absl::StrCat("PCRE2 error ", error_code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(n));
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

struct UnicodeRegex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

UnicodeRegex::UnicodeRegex(std::string pattern, std::unique_ptr<Code> code)
    : pattern_(std::move(pattern)), code_(std::move(code)) {}
UnicodeRegex::UnicodeRegex(UnicodeRegex&&) noexcept = default;
UnicodeRegex& UnicodeRegex::operator=(UnicodeRegex&&) noexcept = default;
UnicodeRegex::~UnicodeRegex() = default;

absl::StatusOr<UnicodeRegex> UnicodeRegex::Compile(std::string_view pattern) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  auto code = std::make_unique<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (code->code == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "regular expression '", absl::string_view(pattern.data(), pattern.size()),
        "' does not compile at offset ", error_offset, ": ", Pcre2Message(error_code)));
  }
  // JIT is an optimisation only: without it (unsupported platform) the interpreter runs.
  code->jit = pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE) == 0;
  return UnicodeRegex(std::string(pattern), std::move(code));
}

absl::StatusOr<std::vector<std::pair<size_t, size_t>>> UnicodeRegex::FindAll(
    std::string_view subject) const {
  std::vector<std::pair<size_t, size_t>> matches;
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr));
  if (data == nullptr) return absl::ResourceExhaustedError("PCRE2 match data allocation failed");
  // pcre2_jit_match never checks UTF-8 validity, so do it once here for both paths.
  if (const size_t bad = FindInvalidUtf8(subject); bad != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("text is not valid UTF-8 at byte offset ", bad));
  }
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t offset = 0;
  constexpr uint32_t options = PCRE2_NO_UTF_CHECK;
  while (offset <= subject.size()) {
    const int rc = code_->jit ? pcre2_jit_match(code_->code, text, subject.size(), offset, options,
                                                data.get(), nullptr)
                              : pcre2_match(code_->code, text, subject.size(), offset, options,
                                            data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("matching regular expression '", pattern_, "' failed: ", Pcre2Message(rc)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t begin = ovector[0];
    const size_t end = ovector[1];
    if (end > begin) {
      matches.emplace_back(begin, end);
      offset = end;
    } else {
      // Empty match: step over one whole character so the next search starts on a boundary.
      if (begin >= subject.size()) break;
      size_t step = 1;
      while (begin + step < subject.size() &&
             (static_cast<uint8_t>(subject[begin + step]) & 0xC0) == 0x80) {
        ++step;
      }
      offset = begin + step;
    }
  }
  return matches;
}

}  // namespace engine::tokenizer
