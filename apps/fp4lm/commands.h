// The fp4lm subcommands, one .cc each, dispatched by main.cc; and the shared way a subcommand
// turns its parsed command line into "run", "help printed" or "usage error".
#ifndef FP4LM_APPS_FP4LM_COMMANDS_H_
#define FP4LM_APPS_FP4LM_COMMANDS_H_

#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "fmt/core.h"
#include "fp4lm/args.h"

namespace fp4lm {

// Process exit statuses of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the engine failed (message on stderr)
inline constexpr int kExitUsage = 2;  // bad command line (message and a hint on stderr)

// `args` are the arguments after the subcommand name.
int RunInfo(std::span<const std::string> args);
int RunGenerate(std::span<const std::string> args);
int RunChat(std::span<const std::string> args);
int RunEval(std::span<const std::string> args);
int RunQuantize(std::span<const std::string> args);
int RunBench(std::span<const std::string> args);

// Parses `args`; returns the exit status if the command should stop now (--help printed to
// stdout, or an error printed to stderr), nullopt if it should run.
inline std::optional<int> ParseCommandLine(ArgParser& parser, std::span<const std::string> args) {
  const absl::Status status = parser.Parse(args);
  if (!status.ok()) {
    fmt::print(stderr, "{}: {}\nRun '{} --help' for usage.\n", parser.command(),
               std::string(status.message()), parser.command());
    return kExitUsage;
  }
  if (parser.help_requested()) {
    fmt::print("{}", parser.Help());
    return kExitOk;
  }
  return std::nullopt;
}

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_COMMANDS_H_
