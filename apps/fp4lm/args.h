// The option parser of the fp4lm subcommands: typed long/short options bound to variables,
// errors that name the option and the text ("--temp: expected a number, got 'abc'"), and the
// --help text. Pure (no printing), so tests/apps/args_test.cc can check it.
#ifndef FP4LM_APPS_FP4LM_ARGS_H_
#define FP4LM_APPS_FP4LM_ARGS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fp4lm {

// Whole-string parsers ("12" yes, "12x", " 12", "" no). Errors say what was expected and
// quote the text; ParseArgs prefixes them with the option name.
absl::StatusOr<int64_t> ParseInt64(std::string_view text);
absl::StatusOr<uint64_t> ParseUint64(std::string_view text);
// Finite decimal or scientific notation; "inf" and "nan" are rejected.
absl::StatusOr<double> ParseFiniteDouble(std::string_view text);

// One option. Returned by the ArgParser::Add* calls so constraints can be chained:
//   parser.AddFloat("top-p", 0, &p.top_p, "P", "nucleus mass").AtLeast(0).AtMost(1);
class Option {
 public:
  enum class Kind { kFlag, kString, kInt, kUint64, kFloat };

  Option& Required() {
    required_ = true;
    return *this;
  }
  // Bounds for numeric options, checked after parsing; the error states them.
  Option& AtLeast(double min) {
    min_ = min;
    min_exclusive_ = false;
    return *this;
  }
  Option& Above(double min) {
    min_ = min;
    min_exclusive_ = true;
    return *this;
  }
  Option& AtMost(double max) {
    max_ = max;
    return *this;
  }

 private:
  friend class ArgParser;
  // "--temp" or "-n"-style display name used in messages: always the long form.
  std::string Display() const { return "--" + long_name_; }
  absl::Status CheckBounds(double value, std::string_view text) const;

  Kind kind_ = Kind::kFlag;
  std::string long_name_;
  char short_name_ = 0;
  std::string metavar_;
  std::string help_;
  std::string default_text_;  // shown in --help; empty = none
  bool required_ = false;
  bool seen_ = false;
  std::optional<double> min_;
  bool min_exclusive_ = false;
  std::optional<double> max_;
  std::function<absl::Status(std::string_view)> set_;  // parses and stores a value
};

class ArgParser {
 public:
  // `command` is the full command ("fp4lm generate"); `synopsis` its one-line form for
  // "usage: ..."; `description` a paragraph shown under it by --help.
  ArgParser(std::string command, std::string synopsis, std::string description);
  ArgParser(const ArgParser&) = delete;
  ArgParser& operator=(const ArgParser&) = delete;

  // `long_name` without dashes ("top-k"); `short_name` 0 for none. The value `*dest` holds
  // when the option is added is shown as its default. `dest` must outlive Parse().
  Option& AddFlag(std::string long_name, char short_name, bool* dest, std::string help);
  Option& AddString(std::string long_name, char short_name, std::string* dest, std::string metavar,
                    std::string help);
  Option& AddInt(std::string long_name, char short_name, int32_t* dest, std::string metavar,
                 std::string help);
  Option& AddUint64(std::string long_name, char short_name, uint64_t* dest, std::string metavar,
                    std::string help);
  Option& AddFloat(std::string long_name, char short_name, float* dest, std::string metavar,
                   std::string help);

  // Parses the arguments after the subcommand name. Accepts "--name value", "--name=value",
  // "-n value" and "-n=value" (not "-nvalue"); a value may begin with '-' ("--temp -1" reaches
  // the bound check). The last occurrence of a repeated option wins. "--" ends options;
  // positional arguments are errors.
  // "-h" / "--help" stops parsing with OK and sets help_requested() (required options are then
  // not checked). On error, the variables of options parsed so far are already written.
  absl::Status Parse(std::span<const std::string> args);

  bool help_requested() const { return help_requested_; }
  // True if the option was given on the command line (not just defaulted).
  bool WasSet(std::string_view long_name) const;

  // The --help text: usage line, description and an aligned option table.
  std::string Help() const;
  const std::string& command() const { return command_; }

 private:
  Option& Add(Option::Kind kind, std::string long_name, char short_name, std::string metavar,
              std::string help, std::string default_text);
  Option* FindLong(std::string_view name) const;
  Option* FindShort(char name) const;

  std::string command_;
  std::string synopsis_;
  std::string description_;
  std::vector<std::unique_ptr<Option>> options_;  // pointers stay valid for chained calls
  bool help_requested_ = false;
};

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_ARGS_H_
