// `fp4lm generate`: continues a prompt with Session::Generate, streaming the text to stdout and
// a speed line to stderr, or printing one JSON object (--json) for scripts and tests.
// The seed defaults to 0, not to a random value as in llama.cpp: a run is reproducible unless
// the user asks otherwise with --seed.
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"
#include "fp4lm/sampling_flags.h"
#include "nlohmann/json.hpp"

namespace fp4lm {
namespace {

struct GenerateOptions {
  engine::ModelOptions model;
  engine::SessionOptions session;
  engine::SamplingParams sampling;
  std::string prompt;
  bool special = false;  // parse special-token text such as <|im_start|> in the prompt
  bool json = false;
};

double PerSecond(int32_t tokens, double seconds) { return seconds > 0.0 ? tokens / seconds : 0.0; }

int Fail(const absl::Status& status) {
  fmt::print(stderr, "fp4lm generate: {}\n", std::string(status.message()));
  return kExitError;
}

int Generate(const GenerateOptions& o) {
  absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(o.model);
  if (!model.ok()) return Fail(model.status());
  absl::StatusOr<std::unique_ptr<engine::Session>> session =
      engine::Session::Create(**model, o.session);
  if (!session.ok()) return Fail(session.status());

  std::string text;
  const engine::TokenCallback on_token = [&](engine::TokenId, std::string_view piece) {
    text.append(piece);
    if (!o.json) {
      fmt::print("{}", piece);
      std::fflush(stdout);  // stream: one flush per token
    }
    return true;
  };
  // BOS + prompt, or BOS alone for an empty prompt (as Session::Generate does).
  absl::StatusOr<std::vector<engine::TokenId>> prompt_tokens =
      (*model)->Tokenize(o.prompt, /*add_bos=*/true, o.special);
  if (!prompt_tokens.ok()) return Fail(prompt_tokens.status());
  if (prompt_tokens->empty() && (*model)->info().bos_id >= 0) {
    prompt_tokens->push_back((*model)->info().bos_id);
  }
  if (!o.json) {  // echo the prompt, as llama.cpp and llama2.c do
    fmt::print("{}", o.prompt);
    std::fflush(stdout);
  }
  std::vector<engine::TokenId> generated;
  engine::GenerateStats stats;
  const absl::Status status =
      (*session)->GenerateFromTokens(*prompt_tokens, o.sampling, on_token, &generated, &stats);
  if (!status.ok()) {
    if (!o.json && !text.empty()) fmt::print("\n");
    return Fail(status);
  }
  const double prompt_tps = PerSecond(stats.prompt_tokens, stats.prefill_seconds);
  const double decode_tps = PerSecond(stats.generated_tokens, stats.decode_seconds);

  if (o.json) {
    // ordered_json keeps the documented key order. With error_handler_t::replace, dump() turns
    // invalid UTF-8 (a prompt from the command line, a model's raw bytes) into U+FFFD instead
    // of throwing.
    nlohmann::ordered_json out;
    out["prompt"] = o.prompt;
    out["prompt_tokens"] = *prompt_tokens;
    out["generated_tokens"] = generated;
    out["text"] = text;
    out["prompt_tokens_per_second"] = prompt_tps;
    out["tokens_per_second"] = decode_tps;
    fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  } else {
    fmt::print("\n");
    std::fflush(stdout);  // the text ends before the stats line when both go to a terminal
    fmt::print(stderr, "prompt {} tokens ({:.2f} t/s), generated {} tokens ({:.2f} t/s)\n",
               stats.prompt_tokens, prompt_tps, stats.generated_tokens, decode_tps);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

int RunGenerate(std::span<const std::string> args) {
  GenerateOptions o;
  o.sampling.max_new_tokens = 128;
  ArgParser parser(
      "fp4lm generate", "fp4lm generate -m MODEL -p PROMPT [-n N] [options]",
      "Continues PROMPT (after BOS; an empty prompt means BOS alone) and streams the text.\n"
      "Stops at an end-of-generation token or after N tokens. The sampling chain is\n"
      "llama.cpp's: repetition penalty, top-k, top-p, min-p, temperature. The seed is 0\n"
      "unless given, so the same command prints the same text.");
  parser
      .AddString("model", 'm', &o.model.path, "MODEL",
                 "a .gguf file, a llama2.c .bin or a Hugging Face directory")
      .Required();
  parser.AddString("tokenizer", 0, &o.model.tokenizer_path, "FILE",
                   "tokenizer to use instead of the model's own");
  parser.AddString("prompt", 'p', &o.prompt, "PROMPT", "text to continue");
  parser.AddInt("n-predict", 'n', &o.sampling.max_new_tokens, "N", "tokens to generate at most")
      .AtLeast(0);
  AddSamplingFlags(parser, o.sampling);
  parser.AddUint64("seed", 's', &o.sampling.seed, "S", "random seed; same seed, same text");
  parser.AddInt("threads", 't', &o.model.num_threads, "N", "CPU threads; 0 = all").AtLeast(0);
  parser
      .AddInt("ctx", 'c', &o.session.max_seq_len, "N",
              "context size in tokens; 0 = the model's own")
      .AtLeast(0);
  parser.AddFlag("special", 0, &o.special,
                 "let the prompt contain special tokens such as <|im_start|> (off: plain text)");
  parser.AddFlag("json", 0, &o.json,
                 "print one JSON object (prompt, token ids, text, speeds) instead of streaming");
  if (const std::optional<int> exit = ParseCommandLine(parser, args)) return *exit;
  return Generate(o);
}

}  // namespace fp4lm
