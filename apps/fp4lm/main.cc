// fp4lm: the command-line front end of libengine. Dispatches to one subcommand per file
// (info.cc, generate.cc, chat.cc, eval.cc, ...); this file only knows their names.
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"

namespace fp4lm {
namespace {

struct Command {
  std::string_view name;
  int (*run)(std::span<const std::string> args);
  std::string_view summary;
};

constexpr Command kCommands[] = {
    {"info", RunInfo, "show a model's architecture, sizes, tensors and tokenizer"},
    {"generate", RunGenerate, "continue a prompt, streaming the text"},
    {"chat", RunChat, "chat with an instruction-tuned model in its chat template"},
    {"quantize", RunQuantize, "quantize a model to W4A4 with the embedded calibration pass"},
    {"bench", RunBench, "time prompt processing and generation, like llama-bench"},
    {"eval", RunEval, "perplexity on a text file; KL divergence against a reference model"},
};

const Command* Find(std::string_view name) {
  for (const Command& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string Usage() {
  std::string out =
      "usage: fp4lm <command> [options]\n"
      "\n"
      "commands:\n";
  for (const Command& c : kCommands) out += fmt::format("  {:<10}{}\n", c.name, c.summary);
  out += fmt::format("  {:<10}{}\n", "help", "show this help, or 'help <command>' for one command");
  out +=
      "\n"
      "  --version  print the library version\n"
      "\n"
      "Run 'fp4lm <command> --help' for the options of a command.\n";
  return out;
}

int Main(std::span<const std::string> args) {
  if (args.empty()) {
    fmt::print(stderr, "{}", Usage());
    return kExitUsage;
  }
  const std::string& name = args[0];
  const std::span<const std::string> rest = args.subspan(1);
  if (name == "--version" || name == "version") {
    fmt::print("fp4lm {}\n", engine::Version());
    return kExitOk;
  }
  if (name == "help" || name == "--help" || name == "-h") {
    if (rest.empty()) {
      fmt::print("{}", Usage());
      return kExitOk;
    }
    if (const Command* c = Find(rest[0])) {
      const std::vector<std::string> help_flag = {"--help"};
      return c->run(help_flag);
    }
    fmt::print(stderr, "fp4lm help: unknown command '{}'\n\n{}", rest[0], Usage());
    return kExitUsage;
  }
  if (const Command* c = Find(name)) return c->run(rest);
  fmt::print(stderr, "fp4lm: unknown command '{}'\n\n{}", name, Usage());
  return kExitUsage;
}

}  // namespace
}  // namespace fp4lm

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  return fp4lm::Main(args);
}
