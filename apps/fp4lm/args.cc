// The fp4lm option parser (see args.h). std::from_chars does the number parsing: it is
// locale-independent and reports exactly how much of the text it consumed.
#include "fp4lm/args.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fp4lm {
namespace {

std::string Quote(std::string_view text) {
  return absl::StrCat("'", absl::string_view(text.data(), text.size()), "'");
}

// from_chars takes no leading '+', which people type ("--seed +3" is harmless).
std::string_view StripPlus(std::string_view text) {
  return text.size() > 1 && text[0] == '+' && text[1] != '-' && text[1] != '+' ? text.substr(1)
                                                                               : text;
}

template <typename T>
absl::StatusOr<T> ParseIntegral(std::string_view text, const char* expected) {
  const std::string_view digits = StripPlus(text);
  T value{};
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is out of range"));
  }
  if (ec != std::errc() || ptr != end || digits.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", expected, ", got ", Quote(text)));
  }
  return value;
}

std::string ToText(const std::string& value) { return value; }
template <typename T>
std::string ToText(T value) {
  return absl::StrCat(value);
}

const char* Noun(Option::Kind kind) {
  switch (kind) {
    case Option::Kind::kInt:
    case Option::Kind::kUint64:
      return "an integer";
    case Option::Kind::kFloat:
      return "a number";
    case Option::Kind::kFlag:
    case Option::Kind::kString:
      break;
  }
  return "a value";
}

}  // namespace

absl::StatusOr<int64_t> ParseInt64(std::string_view text) {
  return ParseIntegral<int64_t>(text, "an integer");
}

absl::StatusOr<uint64_t> ParseUint64(std::string_view text) {
  return ParseIntegral<uint64_t>(text, "a non-negative integer");
}

absl::StatusOr<double> ParseFiniteDouble(std::string_view text) {
  const std::string_view digits = StripPlus(text);
  double value = 0.0;
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (ec == std::errc::result_out_of_range) {
    return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is out of range"));
  }
  if (ec != std::errc() || ptr != end || digits.empty() || !std::isfinite(value)) {
    return absl::InvalidArgumentError(absl::StrCat("expected a number, got ", Quote(text)));
  }
  return value;
}

absl::Status Option::CheckBounds(double value, std::string_view text) const {
  const bool low = min_.has_value() && (min_exclusive_ ? !(value > *min_) : !(value >= *min_));
  const bool high = max_.has_value() && !(value <= *max_);
  if (!low && !high) return absl::OkStatus();
  std::string range;
  if (min_.has_value() && max_.has_value() && !min_exclusive_) {
    range = absl::StrCat(" in [", *min_, ", ", *max_, "]");
  } else {
    if (min_.has_value()) absl::StrAppend(&range, min_exclusive_ ? " > " : " >= ", *min_);
    if (max_.has_value()) absl::StrAppend(&range, min_.has_value() ? " and" : "", " <= ", *max_);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("expected ", Noun(kind_), range, ", got ", Quote(text)));
}

ArgParser::ArgParser(std::string command, std::string synopsis, std::string description)
    : command_(std::move(command)),
      synopsis_(std::move(synopsis)),
      description_(std::move(description)) {}

Option& ArgParser::Add(Option::Kind kind, std::string long_name, char short_name,
                       std::string metavar, std::string help, std::string default_text) {
  auto option = std::make_unique<Option>();
  option->kind_ = kind;
  option->long_name_ = std::move(long_name);
  option->short_name_ = short_name;
  option->metavar_ = std::move(metavar);
  option->help_ = std::move(help);
  option->default_text_ = std::move(default_text);
  options_.push_back(std::move(option));
  return *options_.back();
}

Option& ArgParser::AddFlag(std::string long_name, char short_name, bool* dest, std::string help) {
  Option& o = Add(Option::Kind::kFlag, std::move(long_name), short_name, "", std::move(help), "");
  o.set_ = [dest](std::string_view) {
    *dest = true;
    return absl::OkStatus();
  };
  return o;
}

Option& ArgParser::AddString(std::string long_name, char short_name, std::string* dest,
                             std::string metavar, std::string help) {
  Option& o = Add(Option::Kind::kString, std::move(long_name), short_name, std::move(metavar),
                  std::move(help), ToText(*dest));
  o.set_ = [dest](std::string_view text) {
    dest->assign(text);
    return absl::OkStatus();
  };
  return o;
}

Option& ArgParser::AddInt(std::string long_name, char short_name, int32_t* dest,
                          std::string metavar, std::string help) {
  Option& o = Add(Option::Kind::kInt, std::move(long_name), short_name, std::move(metavar),
                  std::move(help), ToText(*dest));
  o.set_ = [dest, &o](std::string_view text) -> absl::Status {
    const absl::StatusOr<int64_t> value = ParseInt64(text);
    if (!value.ok()) return value.status();
    if (*value < std::numeric_limits<int32_t>::min() ||
        *value > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is out of range"));
    }
    if (absl::Status s = o.CheckBounds(static_cast<double>(*value), text); !s.ok()) return s;
    *dest = static_cast<int32_t>(*value);
    return absl::OkStatus();
  };
  return o;
}

Option& ArgParser::AddUint64(std::string long_name, char short_name, uint64_t* dest,
                             std::string metavar, std::string help) {
  Option& o = Add(Option::Kind::kUint64, std::move(long_name), short_name, std::move(metavar),
                  std::move(help), ToText(*dest));
  o.set_ = [dest, &o](std::string_view text) -> absl::Status {
    const absl::StatusOr<uint64_t> value = ParseUint64(text);
    if (!value.ok()) return value.status();
    if (absl::Status s = o.CheckBounds(static_cast<double>(*value), text); !s.ok()) return s;
    *dest = *value;
    return absl::OkStatus();
  };
  return o;
}

Option& ArgParser::AddFloat(std::string long_name, char short_name, float* dest,
                            std::string metavar, std::string help) {
  Option& o = Add(Option::Kind::kFloat, std::move(long_name), short_name, std::move(metavar),
                  std::move(help), ToText(*dest));
  o.set_ = [dest, &o](std::string_view text) -> absl::Status {
    const absl::StatusOr<double> value = ParseFiniteDouble(text);
    if (!value.ok()) return value.status();
    if (std::fabs(*value) > std::numeric_limits<float>::max()) {
      return absl::InvalidArgumentError(absl::StrCat(Quote(text), " is out of range"));
    }
    if (absl::Status s = o.CheckBounds(*value, text); !s.ok()) return s;
    *dest = static_cast<float>(*value);
    return absl::OkStatus();
  };
  return o;
}

Option* ArgParser::FindLong(std::string_view name) const {
  for (const auto& o : options_) {
    if (o->long_name_ == name) return o.get();
  }
  return nullptr;
}

Option* ArgParser::FindShort(char name) const {
  for (const auto& o : options_) {
    if (o->short_name_ != 0 && o->short_name_ == name) return o.get();
  }
  return nullptr;
}

bool ArgParser::WasSet(std::string_view long_name) const {
  const Option* o = FindLong(long_name);
  return o != nullptr && o->seen_;
}

absl::Status ArgParser::Parse(std::span<const std::string> args) {
  help_requested_ = false;
  for (const auto& o : options_) o->seen_ = false;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument ", Quote(arg)));
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      help_requested_ = true;
      return absl::OkStatus();
    }
    // Split "--name=value" and "-n=value"; find the option by long or short name.
    std::string typed = arg;
    std::optional<std::string> inline_value;
    Option* option = nullptr;
    if (arg[1] == '-') {
      const size_t eq = arg.find('=');
      if (eq != std::string::npos) {
        typed = arg.substr(0, eq);
        inline_value = arg.substr(eq + 1);
      }
      option = FindLong(std::string_view(typed).substr(2));
    } else if (arg.size() == 2 || arg[2] == '=') {
      if (arg.size() > 2) {
        typed = arg.substr(0, 2);
        inline_value = arg.substr(3);
      }
      option = FindShort(arg[1]);
    }
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option ", Quote(typed)));
    }
    std::string_view value;
    if (option->kind_ == Option::Kind::kFlag) {
      if (inline_value.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(typed, ": takes no value, got ", Quote(*inline_value)));
      }
    } else if (inline_value.has_value()) {
      value = *inline_value;
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat(typed, ": missing value ", option->metavar_));
    }
    if (absl::Status s = option->set_(value); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(typed, ": ", s.message()));
    }
    option->seen_ = true;
  }
  for (const auto& o : options_) {
    if (o->required_ && !o->seen_) {
      std::string name = o->Display();
      if (o->short_name_ != 0) absl::StrAppend(&name, " (-", std::string(1, o->short_name_), ")");
      return absl::InvalidArgumentError(absl::StrCat("missing required option ", name));
    }
  }
  return absl::OkStatus();
}

std::string ArgParser::Help() const {
  constexpr size_t kMaxLeft = 30;
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& o : options_) {
    std::string left = o->short_name_ != 0
                           ? absl::StrCat("  -", std::string(1, o->short_name_), ", ")
                           : std::string("      ");
    absl::StrAppend(&left, "--", o->long_name_);
    if (!o->metavar_.empty()) absl::StrAppend(&left, " ", o->metavar_);
    std::string right = o->help_;
    if (o->required_) {
      absl::StrAppend(&right, " (required)");
    } else if (!o->default_text_.empty() && o->kind_ != Option::Kind::kFlag) {
      absl::StrAppend(&right, " (default: ", o->default_text_, ")");
    }
    rows.emplace_back(std::move(left), std::move(right));
  }
  rows.emplace_back("  -h, --help", "show this help");
  size_t width = 0;
  for (const auto& [left, right] : rows) {
    if (left.size() <= kMaxLeft) width = std::max(width, left.size());
  }
  std::string out = absl::StrCat("usage: ", synopsis_, "\n");
  if (!description_.empty()) absl::StrAppend(&out, "\n", description_, "\n");
  absl::StrAppend(&out, "\noptions:\n");
  for (const auto& [left, right] : rows) {
    if (left.size() > width) {
      absl::StrAppend(&out, left, "\n", std::string(width + 2, ' '), right, "\n");
    } else {
      absl::StrAppend(&out, left, std::string(width + 2 - left.size(), ' '), right, "\n");
    }
  }
  return out;
}

}  // namespace fp4lm
