// `fp4lm eval`: perplexity of a model on a text file, optionally against a reference model
// (KL divergence, top-1 agreement, PPL ratio): the acceptance numbers of a quantized model, as
// llama.cpp's CONTRIBUTING asks for. The math and the loop live in perplexity.{h,cc}.
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"
#include "fp4lm/perplexity.h"
#include "nlohmann/json.hpp"

namespace fp4lm {
namespace {

struct EvalOptions {
  engine::ModelOptions model;
  std::string ref_model;
  std::string text_file;
  std::string protocol = "papers";
  int32_t ctx = 0;
  int32_t chunks = 0;
  bool json = false;
};

int Fail(const absl::Status& status) {
  fmt::print(stderr, "fp4lm eval: {}\n", std::string(status.message()));
  return kExitError;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        fmt::format("cannot open text file '{}': {}", path, std::strerror(errno)));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(fmt::format("error reading text file '{}'", path));
  return buffer.str();
}

// "1h02m", "3m05s", "12s".
std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

// Progress on stderr: a start line once, then one line rewritten in place per window.
void ReportProgress(const EvalProgress& p, PplProtocol protocol) {
  if (p.windows_done == 0) {
    fmt::print(stderr, "fp4lm eval: {} tokens, {} windows of {} tokens ({} protocol)\n",
               p.n_tokens, p.windows_total, p.ctx, PplProtocolName(protocol));
    return;
  }
  const double window_tokens = static_cast<double>(p.windows_done) * p.ctx;
  const double tps = p.seconds > 0 ? window_tokens / p.seconds : 0.0;
  const double eta = p.seconds / p.windows_done * (p.windows_total - p.windows_done);
  fmt::print(stderr, "\rwindow {}/{}  PPL {:.4f}  {:.1f} tok/s  ETA {}   ", p.windows_done,
             p.windows_total, p.running_ppl, tps, Duration(eta));
  if (p.windows_done == p.windows_total) fmt::print(stderr, "\n");
  std::fflush(stderr);
}

// NaN (no reference) becomes JSON null.
nlohmann::ordered_json Number(bool present, double value) {
  return present && std::isfinite(value) ? nlohmann::ordered_json(value) : nullptr;
}

void PrintJson(const EvalOptions& o, const EvalResult& r, double total_seconds) {
  const bool ref = r.has_reference;
  nlohmann::ordered_json out;
  out["model"] = o.model.path;
  out["ref_model"] = ref ? nlohmann::ordered_json(o.ref_model) : nullptr;
  out["file"] = o.text_file;
  out["protocol"] = PplProtocolName(r.protocol);
  out["ctx"] = r.ctx;
  out["windows"] = r.windows;
  out["n_tokens"] = r.n_tokens;
  out["scored_tokens"] = r.scored_tokens;
  out["bos_per_window"] = r.bos_per_window;
  out["ppl"] = Number(true, r.ppl);
  out["ppl_stderr"] = Number(true, r.ppl_stderr);
  out["nll"] = Number(true, r.nll);
  out["ref_ppl"] = Number(ref, r.ref_ppl);
  out["ref_nll"] = Number(ref, r.ref_nll);
  out["ppl_ratio"] = Number(ref, r.ppl / r.ref_ppl);
  out["kld_mean"] = Number(ref, r.kld_mean);
  out["top1_agreement"] = Number(ref, r.top1_agreement);
  out["seconds"] = r.seconds;
  out["total_seconds"] = total_seconds;
  fmt::print("{}\n", out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
}

void PrintSummary(const EvalOptions& o, const EvalResult& r, double total_seconds) {
  const char* scoring = r.protocol == PplProtocol::kLlamaCpp
                            ? (r.bos_per_window ? "llama-perplexity: BOS first, second half scored"
                                                : "llama-perplexity: second half scored")
                            : "GPTQ-style: no BOS, all but the first token scored";
  fmt::print("## fp4lm eval: perplexity\n");
  fmt::print("- model: {}\n", o.model.path);
  if (r.has_reference) fmt::print("- reference: {}\n", o.ref_model);
  fmt::print("- text: {} ({} tokens)\n", o.text_file, r.n_tokens);
  fmt::print("- protocol: {} ({})\n", PplProtocolName(r.protocol), scoring);
  fmt::print("- windows: {} x {} tokens, {} tokens scored\n", r.windows, r.ctx, r.scored_tokens);
  fmt::print("- PPL: {:.4f} +/- {:.4f} (mean NLL {:.6f})\n", r.ppl, r.ppl_stderr, r.nll);
  if (r.has_reference) {
    fmt::print("- reference PPL: {:.4f} (mean NLL {:.6f})\n", r.ref_ppl, r.ref_nll);
    fmt::print("- PPL ratio (model / reference): {:.6f}\n", r.ppl / r.ref_ppl);
    fmt::print("- mean KL(reference || model): {:.6f} nats per token\n", r.kld_mean);
    fmt::print("- top-1 agreement: {:.3f} %\n", r.top1_agreement);
  }
  const double tps = r.seconds > 0 ? static_cast<double>(r.windows) * r.ctx / r.seconds : 0.0;
  fmt::print("- time: {:.2f} s evaluating ({:.1f} tok/s), {:.2f} s in all\n", r.seconds, tps,
             total_seconds);
}

int Eval(const EvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<PplProtocol> protocol = ParsePplProtocol(o.protocol);
  if (!protocol.ok()) return Fail(protocol.status());
  const absl::StatusOr<std::string> text = ReadFile(o.text_file);
  if (!text.ok()) return Fail(text.status());

  absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(o.model);
  if (!model.ok()) return Fail(model.status());
  std::unique_ptr<engine::Model> ref_model;
  if (!o.ref_model.empty()) {
    engine::ModelOptions ref_options = o.model;
    ref_options.path = o.ref_model;
    absl::StatusOr<std::unique_ptr<engine::Model>> loaded = engine::Model::Load(ref_options);
    if (!loaded.ok()) return Fail(loaded.status());
    ref_model = *std::move(loaded);
  }

  const EvalConfig config{.ctx = o.ctx, .protocol = *protocol, .max_windows = o.chunks};
  bool line_open = false;  // a progress line without its newline yet
  const absl::StatusOr<EvalResult> result =
      EvaluatePerplexity(**model, ref_model.get(), *text, config, [&](const EvalProgress& p) {
        ReportProgress(p, *protocol);
        line_open = p.windows_done > 0 && p.windows_done < p.windows_total;
      });
  if (!result.ok()) {
    if (line_open) fmt::print(stderr, "\n");
    return Fail(result.status());
  }
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (o.json) {
    PrintJson(o, *result, total);
  } else {
    PrintSummary(o, *result, total);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

int RunEval(std::span<const std::string> args) {
  EvalOptions o;
  ArgParser parser(
      "fp4lm eval", "fp4lm eval -m MODEL --perplexity FILE [--ref-model FP] [options]",
      "Perplexity of MODEL on the text of FILE, tokenized once and cut into windows of\n"
      "--ctx tokens, each evaluated from an empty KV cache. Protocols:\n"
      "  papers    non-overlapping windows, no BOS, every token but the first scored; the\n"
      "            last partial window is dropped (GPTQ, LLM-FP4, QuaRot on WikiText-2)\n"
      "  llamacpp  llama.cpp's llama-perplexity: BOS first in each window (when the\n"
      "            vocabulary adds one), only the second half of each window scored\n"
      "With --ref-model (a full-precision model with the same tokenizer) both models run on\n"
      "every window, and the mean KL(reference || model) per scored token, the top-1\n"
      "agreement and the PPL ratio are reported too. tok/s counts window tokens.");
  parser
      .AddString("model", 'm', &o.model.path, "MODEL",
                 "a .gguf file, a llama2.c .bin or a Hugging Face directory")
      .Required();
  parser.AddString("perplexity", 0, &o.text_file, "FILE", "text file to evaluate (UTF-8)")
      .Required();
  parser
      .AddInt("ctx", 'c', &o.ctx, "N",
              "window length in tokens; 0 = 2048 or the model's context if smaller")
      .AtLeast(0);
  parser.AddString("ref-model", 0, &o.ref_model, "FP",
                   "reference model for KL divergence and top-1 agreement");
  parser.AddInt("chunks", 0, &o.chunks, "N", "evaluate only the first N windows; 0 = all")
      .AtLeast(0);
  parser.AddString("protocol", 0, &o.protocol, "P", "papers or llamacpp");
  parser.AddInt("threads", 't', &o.model.num_threads, "N", "CPU threads; 0 = all").AtLeast(0);
  parser.AddFlag("json", 0, &o.json, "print one JSON object instead of the summary lines");
  if (const std::optional<int> exit = ParseCommandLine(parser, args)) return *exit;
  if (!ParsePplProtocol(o.protocol).ok()) {
    fmt::print(stderr, "fp4lm eval: --protocol: expected 'papers' or 'llamacpp', got '{}'\n"
                       "Run 'fp4lm eval --help' for usage.\n",
               o.protocol);
    return kExitUsage;
  }
  return Eval(o);
}

}  // namespace fp4lm
