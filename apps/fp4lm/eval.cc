// `fp4lm eval`: perplexity of a model on a text file, optionally against a reference model
// (KL divergence, top-1 agreement, PPL ratio): the acceptance numbers of a quantized model, as
// llama.cpp's CONTRIBUTING asks for; and with --tasks the zero-shot accuracy of one or several
// models as lm-evaluation-harness measures it. The math and the loops live in perplexity.{h,cc}
// and harness*.{h,cc}; this file parses options, reports progress and prints.
#include <unistd.h>

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
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"
#include "fp4lm/harness.h"
#include "fp4lm/harness_report.h"
#include "fp4lm/harness_tasks.h"
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
  // --tasks mode.
  std::vector<std::string> models;  // every -m, in order
  std::string tasks;
  std::string data_dir = "../shared/data";
  int32_t limit = 0;
  std::string json_file;
  std::string bos = "auto";
  int32_t max_length = 0;
  bool no_sink_prefix = false;
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
    fmt::print(stderr, "fp4lm eval: {} tokens, {} windows of {} tokens ({} protocol)\n", p.n_tokens,
               p.windows_total, p.ctx, PplProtocolName(protocol));
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

// --- Zero-shot tasks (--tasks) ---------------------------------------------------------

// A progress line per task and model on stderr: bar, items/s, tokens/s, ETA. Rewritten in
// place on a terminal; on a pipe, a line every 30 s so logs stay short.
class ProgressBar {
 public:
  ProgressBar(std::string label, std::string unit)
      : label_(std::move(label)), unit_(std::move(unit)), tty_(isatty(2) == 1) {}

  void Update(int64_t done, int64_t total, double seconds, int64_t tokens) {
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    const bool final = done == total;
    if (!final && done > 0 && since < (tty_ ? 0.25 : 30.0)) return;
    if (done == 0 && !tty_) return;
    last_ = now;
    constexpr int kWidth = 24;
    const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
    const double rate = seconds > 0 ? done / seconds : 0.0;
    const double eta = rate > 0 ? (total - done) / rate : NAN;
    fmt::print(stderr, "{}{} [{}{}] {}/{} {}  {:.2f} it/s  {:.0f} tok/s  {} {}{}", tty_ ? "\r" : "",
               label_, std::string(filled, '#'), std::string(kWidth - filled, '.'), done, total,
               unit_, rate, seconds > 0 ? tokens / seconds : 0.0, final ? "took" : "ETA",
               Duration(final ? seconds : eta), final || !tty_ ? "\n" : "   ");
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::string unit_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
};

absl::StatusOr<std::vector<Task>> LoadTasks(const EvalOptions& o,
                                            std::vector<std::string>& skipped) {
  absl::StatusOr<std::vector<TaskRequest>> requests = ParseTaskList(o.tasks);
  if (!requests.ok()) return requests.status();
  // "all" tolerates missing files (not every set is in ../shared); named tasks do not.
  bool all = false;
  for (size_t pos = 0; pos <= o.tasks.size();) {
    const size_t comma = std::min(o.tasks.find(',', pos), o.tasks.size());
    if (PyStrip(std::string_view(o.tasks).substr(pos, comma - pos)) == "all") all = true;
    pos = comma + 1;
  }
  std::vector<Task> tasks;
  for (const TaskRequest& r : *requests) {
    std::string file = r.file;
    if (file.empty()) {
      absl::StatusOr<std::string> found = FindTaskFile(*r.spec, o.data_dir);
      if (!found.ok()) {
        if (all) {
          skipped.push_back(
              fmt::format("{} ({})", r.spec->name, std::string(found.status().message())));
          continue;
        }
        return found.status();
      }
      file = *found;
    }
    // For WikiText-2 the limit is applied to windows, by the perplexity loop.
    const int64_t limit = r.spec->scoring == TaskScoring::kPerplexity ? 0 : o.limit;
    absl::StatusOr<Task> task = LoadTask(*r.spec, file, limit);
    if (!task.ok()) return task.status();
    tasks.push_back(*std::move(task));
  }
  if (tasks.empty()) {
    return absl::NotFoundError(fmt::format("no task file found under --data-dir '{}'", o.data_dir));
  }
  return tasks;
}

// Whether this model's requests start with BOS under the policy (what Tokenize adds to "x").
bool AddsBos(const engine::Model& model, BosPolicy bos) {
  const absl::StatusOr<EncodedRequest> r = EncodeRequest(model, "x", " y", bos);
  return r.ok() && !r->context.empty() && r->context.front() == model.info().bos_id;
}

int EvalTasks(const EvalOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const absl::StatusOr<BosPolicy> bos = ParseBosPolicy(o.bos);
  if (!bos.ok()) return Fail(bos.status());
  // Fail now, not after hours of scoring, if the JSON file cannot be written.
  if (!o.json_file.empty() && o.json_file != "-" && !std::ofstream(o.json_file)) {
    return Fail(absl::PermissionDeniedError(
        fmt::format("cannot write --json file '{}': {}", o.json_file, std::strerror(errno))));
  }
  HarnessReport report;
  absl::StatusOr<std::vector<Task>> tasks = LoadTasks(o, report.skipped);
  if (!tasks.ok()) return Fail(tasks.status());
  for (const std::string& s : report.skipped) fmt::print(stderr, "fp4lm eval: skipping {}\n", s);

  std::vector<std::unique_ptr<engine::Model>> models;
  for (const std::string& path : o.models) {
    engine::ModelOptions options = o.model;
    options.path = path;
    absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(options);
    if (!model.ok()) return Fail(model.status());
    std::string sink;
    for (const auto& [key, value] : (*model)->info().quantization) {
      if (key == "sink") sink = value;
    }
    report.models.push_back(ModelColumn{.path = path,
                                        .weight_format = (*model)->info().weight_format,
                                        .tokenizer = (*model)->info().tokenizer,
                                        .adds_bos = AddsBos(**model, *bos),
                                        .sink = sink,
                                        .sink_prefix = !o.no_sink_prefix});
    models.push_back(*std::move(model));
  }
  report.data_dir = o.data_dir;
  report.limit = o.limit;
  report.bos = o.bos;
  report.window = o.max_length > 0 ? o.max_length : models[0]->info().max_seq_len;

  const HarnessConfig config{.window = o.max_length, .bos = *bos, .sink_prefix = !o.no_sink_prefix};
  for (Task& task : *tasks) {
    TaskOutcome outcome;
    for (size_t m = 0; m < models.size(); ++m) {
      const std::string label = fmt::format("{} [{}/{}]", task.spec->name, m + 1, models.size());
      if (task.spec->scoring == TaskScoring::kPerplexity) {
        // --protocol (the papers' by default); models after the first also get KL against
        // the first. --chunks, else --limit, caps the windows.
        const EvalConfig ppl_config{.ctx = o.ctx,
                                    .protocol = *ParsePplProtocol(o.protocol),
                                    .max_windows = o.chunks > 0 ? o.chunks : o.limit};
        ProgressBar bar(label, "windows");
        auto progress = [&](const EvalProgress& p) {
          bar.Update(p.windows_done, p.windows_total, p.seconds,
                     static_cast<int64_t>(p.windows_done) * p.ctx);
        };
        const engine::Model* ref = m > 0 ? models[0].get() : nullptr;
        absl::StatusOr<EvalResult> r =
            EvaluatePerplexity(*models[m], ref, task.text, ppl_config, progress);
        if (!r.ok() && ref != nullptr && absl::IsInvalidArgument(r.status())) {
          // A model with another tokenizer or vocabulary has no KL against the first.
          fmt::print(stderr, "fp4lm eval: no KL divergence for model {}: {}\n", m + 1,
                     std::string(r.status().message()));
          r = EvaluatePerplexity(*models[m], nullptr, task.text, ppl_config, progress);
        }
        if (!r.ok()) return Fail(r.status());
        outcome.perplexity.push_back(*r);
        continue;
      }
      ProgressBar bar(label, "items");
      absl::StatusOr<TaskRun> run = RunTask(
          *models[m], task, config,
          [&](const HarnessProgress& p) { bar.Update(p.done, p.total, p.seconds, p.tokens_fed); });
      if (!run.ok()) return Fail(run.status());
      outcome.runs.push_back(*std::move(run));
    }
    outcome.task = std::move(task);
    report.tasks.push_back(std::move(outcome));
  }
  report.total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (!o.json_file.empty()) {
    const std::string json = FormatJson(report);
    if (o.json_file == "-") {
      fmt::print("{}\n", json);
    } else {
      std::ofstream out(o.json_file, std::ios::binary);
      out << json << "\n";
      if (!out) {
        return Fail(absl::PermissionDeniedError(
            fmt::format("cannot write --json file '{}': {}", o.json_file, std::strerror(errno))));
      }
    }
  }
  if (o.json_file != "-") fmt::print("{}", FormatMarkdown(report));
  std::fflush(stdout);
  return kExitOk;
}

// The option parser keeps the last of a repeated option; -m may be repeated here, so every
// model is collected first. With --tasks, "--json FILE" names a file (without --tasks,
// --json stays the flag that prints the perplexity summary as JSON). Returns the arguments
// for the parser.
std::vector<std::string> PreScan(std::span<const std::string> args, EvalOptions& o, bool& harness) {
  harness = false;
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a == "--tasks" || a.rfind("--tasks=", 0) == 0) harness = true;
  }
  std::vector<std::string> rest;
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_ended || a == "--") {
      options_ended = true;
      rest.push_back(a);
      continue;
    }
    if ((a == "-m" || a == "--model") && i + 1 < args.size()) {
      o.models.push_back(args[i + 1]);
    } else if (a.rfind("--model=", 0) == 0) {
      o.models.push_back(a.substr(8));
    } else if (a.rfind("-m=", 0) == 0) {
      o.models.push_back(a.substr(3));
    }
    if (harness && a == "--json" && i + 1 < args.size() &&
        (args[i + 1] == "-" || args[i + 1].rfind("-", 0) != 0)) {
      o.json_file = args[++i];
      continue;
    }
    if (harness && a.rfind("--json=", 0) == 0) {
      o.json_file = a.substr(7);
      continue;
    }
    rest.push_back(a);
  }
  return rest;
}

}  // namespace

int RunEval(std::span<const std::string> args) {
  EvalOptions o;
  bool harness = false;
  const std::vector<std::string> parsed_args = PreScan(args, o, harness);
  ArgParser parser(
      "fp4lm eval",
      "fp4lm eval -m MODEL --perplexity FILE [--ref-model FP] [options]\n"
      "       fp4lm eval -m MODEL [-m MODEL2 ...] --tasks LIST [--data-dir DIR] [--limit N]\n"
      "                  [--json FILE] [options]",
      "Perplexity of MODEL on the text of FILE, tokenized once and cut into windows of\n"
      "--ctx tokens, each evaluated from an empty KV cache. Protocols:\n"
      "  papers    non-overlapping windows, no BOS, every token but the first scored; the\n"
      "            last partial window is dropped (GPTQ, LLM-FP4, QuaRot on WikiText-2)\n"
      "  llamacpp  llama.cpp's llama-perplexity: BOS first in each window (when the\n"
      "            vocabulary adds one), only the second half of each window scored\n"
      "With --ref-model (a full-precision model with the same tokenizer) both models run on\n"
      "every window, and the mean KL(reference || model) per scored token, the top-1\n"
      "agreement and the PPL ratio are reported too. tok/s counts window tokens.\n"
      "\n"
      "With --tasks: zero-shot accuracy as lm-evaluation-harness 0.4 measures it (its task\n"
      "templates, request encoding, acc / acc_norm with standard errors) on piqa, hellaswag,\n"
      "arc_easy, arc_challenge, boolq, winogrande, lambada_openai (acc, perplexity),\n"
      "openbookqa and wikitext2 (papers' perplexity; with several models also KL divergence\n"
      "and top-1 agreement against the first). LIST is comma-separated names, 'all', or\n"
      "name=FILE; files are looked up under --data-dir in the schemas of shared/README.md.\n"
      "'all' skips tasks whose file is missing. Several -m give one column per model and the\n"
      "gap to the first, plus the LLM-FP4 and QuaRot averages; --json FILE ('-' = stdout)\n"
      "writes every item's log-likelihoods.");
  parser
      .AddString("model", 'm', &o.model.path, "MODEL",
                 "a .gguf file, a llama2.c .bin or a Hugging Face directory")
      .Required();
  parser.AddString("perplexity", 0, &o.text_file, "FILE", "text file to evaluate (UTF-8)");
  parser.AddString("tasks", 0, &o.tasks, "LIST",
                   "zero-shot tasks: comma-separated names, 'all', or name=FILE");
  parser.AddString("data-dir", 0, &o.data_dir, "DIR", "where --tasks files are looked up");
  parser
      .AddInt("limit", 0, &o.limit, "N",
              "--tasks: the first N items of each task (WikiText-2: windows); 0 = all")
      .AtLeast(0);
  parser.AddString("bos", 0, &o.bos, "P",
                   "--tasks: BOS at the start of requests: auto (as the tokenizer prescribes, "
                   "like lm-eval), always, never");
  parser.AddFlag("no-sink-prefix", 0, &o.no_sink_prefix,
                 "--tasks: W4A4 models with a stored attention sink get it only after a BOS, "
                 "not in front of every request (the engine's default; WikiText-2 keeps it)");
  parser
      .AddInt("max-length", 0, &o.max_length, "N",
              "--tasks: log-likelihood window (lm-eval max_length); 0 = the model's context")
      .AtLeast(0);
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
  parser.AddFlag("json", 0, &o.json,
                 "print one JSON object instead of the summary lines; with --tasks, --json FILE "
                 "writes the per-item JSON to FILE");
  if (const std::optional<int> exit = ParseCommandLine(parser, parsed_args)) return *exit;
  auto usage = [&](const std::string& message) {
    fmt::print(stderr, "fp4lm eval: {}\nRun 'fp4lm eval --help' for usage.\n", message);
    return kExitUsage;
  };
  if (harness) {
    if (!o.text_file.empty()) return usage("--perplexity and --tasks are separate modes");
    if (!o.ref_model.empty()) {
      return usage(
          "--ref-model is for --perplexity; with --tasks give several -m (KL is "
          "against the first)");
    }
    if (o.json && o.json_file.empty()) return usage("--json needs a FILE with --tasks");
    if (!ParsePplProtocol(o.protocol).ok()) {
      return usage(
          fmt::format("--protocol: expected 'papers' or 'llamacpp', got '{}'", o.protocol));
    }
    if (!ParseBosPolicy(o.bos).ok()) {
      return usage(fmt::format("--bos: expected 'auto', 'always' or 'never', got '{}'", o.bos));
    }
    if (!ParseTaskList(o.tasks).ok()) {
      return usage(
          fmt::format("--tasks: {}", std::string(ParseTaskList(o.tasks).status().message())));
    }
    return EvalTasks(o);
  }
  if (o.text_file.empty()) return usage("one of --perplexity FILE or --tasks LIST is required");
  if (o.models.size() > 1) {
    return usage("several -m are for --tasks; for perplexity give --ref-model");
  }
  if (!ParsePplProtocol(o.protocol).ok()) {
    fmt::print(stderr,
               "fp4lm eval: --protocol: expected 'papers' or 'llamacpp', got '{}'\n"
               "Run 'fp4lm eval --help' for usage.\n",
               o.protocol);
    return kExitUsage;
  }
  return Eval(o);
}

}  // namespace fp4lm
