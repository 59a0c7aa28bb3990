// `fp4lm quantize`: turns a full-precision model into a W4A4 model file with the calibration
// pass inside fp4lm (quantizer/quantize_model.h), showing progress and a per-layer summary.
#include <chrono>
#include <cstdio>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"
#include "quantizer/quantize_model.h"

namespace fp4lm {
namespace {

namespace q = engine::quantizer;

struct QuantizeCommand {
  engine::ModelOptions model;
  std::string output;
  std::string method = "llm-fp4";
  bool e2m1_only = false;
  bool no_sink = false;
  bool no_gptq = false;
  bool no_rotation = false;
  bool quiet = false;
  q::QuantizeOptions options;
};

absl::Status ParseMethod(const std::string& name, q::Method* method) {
  for (q::Method m : {q::Method::kRtn, q::Method::kLlmFp4, q::Method::kMergeQuant}) {
    if (name == q::MethodName(m)) {
      *method = m;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      fmt::format("--method: unknown method '{}' (known: rtn, llm-fp4, mergequant)", name));
}

// A one-line progress bar on stderr, redrawn in place when its percentage changes.
void DrawProgress(std::string_view stage, int32_t done, int32_t total) {
  constexpr int kWidth = 30;
  const int64_t percent = total > 0 ? int64_t{100} * done / total : 100;
  const int64_t previous = total > 0 ? int64_t{100} * (done - 1) / total : -1;
  if (percent == previous && done != total) return;
  const int filled = total > 0 ? static_cast<int>(int64_t{kWidth} * done / total) : 0;
  fmt::print(stderr, "\r{:<18} [{}{}] {}/{}", stage, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), done, total);
  if (done == total) fmt::print(stderr, "\n");
  std::fflush(stderr);
}

void PrintSummary(const q::QuantizeReport& report) {
  fmt::print("calibration: {}\n", report.calibration);
  fmt::print("{:>5}  {:<12} {:<6} {:>5} {:>10}  weights (format, mean clip, proxy error)\n",
             "layer", "input", "act", "clip", "act err");
  for (const q::GroupReport& g : report.groups) {
    std::string weights;
    for (const std::string& w : g.weights) weights += (weights.empty() ? "" : "; ") + w;
    fmt::print("{:>5}  {:<12} {:<6} {:>5.2f} {:>10.3e}  {}\n", g.layer, g.input, g.act_format,
               g.act_clip_ratio, g.act_relative_error, weights);
  }
  fmt::print("time: calibration text {:.1f} s, quantization {:.1f} s\n", report.calibration_seconds,
             report.quantize_seconds);
}

int Quantize(QuantizeCommand& cmd) {
  if (absl::Status s = ParseMethod(cmd.method, &cmd.options.method); !s.ok()) {
    fmt::print(stderr, "fp4lm quantize: {}\n", std::string(s.message()));
    return kExitUsage;
  }
  cmd.options.e2m1_only = cmd.e2m1_only;
  cmd.options.sink = !cmd.no_sink;
  cmd.options.gptq = !cmd.no_gptq;
  cmd.options.rotate_values = !cmd.no_rotation;
  cmd.options.num_threads = cmd.model.num_threads;
  if (!cmd.quiet) cmd.options.progress = DrawProgress;
  absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(cmd.model);
  if (!model.ok()) {
    fmt::print(stderr, "fp4lm quantize: {}\n", std::string(model.status().message()));
    return kExitError;
  }
  q::QuantizeReport report;
  absl::StatusOr<engine::model::LoadedModel> quantized =
      q::QuantizeModel(**model, cmd.options, &report);
  if (!quantized.ok()) {
    fmt::print(stderr, "fp4lm quantize: {}\n", std::string(quantized.status().message()));
    return kExitError;
  }
  if (absl::Status s = q::SaveQuantizedModel(*quantized, cmd.output); !s.ok()) {
    fmt::print(stderr, "fp4lm quantize: {}\n", std::string(s.message()));
    return kExitError;
  }
  if (!cmd.quiet) PrintSummary(report);
  fmt::print("wrote {} ({}, {})\n", cmd.output, q::MethodName(cmd.options.method),
             cmd.options.e2m1_only ? "e2m1 only" : "format search");
  return kExitOk;
}

}  // namespace

int RunQuantize(std::span<const std::string> args) {
  QuantizeCommand cmd;
  q::CalibrationOptions& calib = cmd.options.calibration;
  ArgParser parser(
      "fp4lm quantize", "fp4lm quantize -m MODEL -o OUT [options]",
      "Quantizes MODEL to W4A4 (FP4 weights and activations with static activation scales)\n"
      "and writes one self-contained GGUF file. Calibration runs inside fp4lm on text the\n"
      "model generates itself (seeded), or on --calib-file. Deterministic for a given seed.\n"
      "Methods: llm-fp4 (power-of-two channel factors folded into the weights, FP format and\n"
      "clipping search), mergequant (quantization-step migration with adaptive clipping), rtn\n"
      "(round-to-nearest min-max baseline).");
  parser.AddString("model", 'm', &cmd.model.path, "MODEL", "the full-precision model").Required();
  parser.AddString("tokenizer", 0, &cmd.model.tokenizer_path, "FILE",
                   "tokenizer to use instead of the model's own");
  parser.AddString("output", 'o', &cmd.output, "OUT", "the W4A4 .gguf to write").Required();
  parser.AddString("method", 0, &cmd.method, "NAME", "llm-fp4 | mergequant | rtn");
  parser.AddFlag("e2m1-only", 0, &cmd.e2m1_only,
                 "use only E2M1 (what FP4 hardware runs), no E3M0/E1M2 search");
  parser.AddFlag("no-sink", 0, &cmd.no_sink,
                 "quantize the BOS attention sink too instead of keeping it in full precision");
  parser.AddFlag("no-gptq", 0, &cmd.no_gptq,
                 "round weights to nearest instead of GPTQ's error compensation (the papers' "
                 "plain methods)");
  parser.AddFlag("no-rotation", 0, &cmd.no_rotation,
                 "keep attention values in their own basis (no per-head Hadamard rotation)");
  parser.AddString("calib-file", 0, &calib.file, "FILE",
                   "calibration text (never an evaluation set); default: self-generated");
  parser.AddInt("calib-samples", 0, &calib.samples, "N", "calibration sequences").AtLeast(1);
  parser.AddInt("calib-len", 0, &calib.length, "L", "tokens per calibration sequence").AtLeast(2);
  parser.AddUint64("seed", 's', &calib.seed, "S", "seed of the self-generated calibration text");
  parser.AddFloat("alpha", 0, &cmd.options.migration_alpha, "A",
                  "mergequant: activation/weight balance of the step migration")
      .AtLeast(0)
      .AtMost(1);
  parser.AddInt("threads", 't', &cmd.model.num_threads, "N", "CPU threads; 0 = all").AtLeast(0);
  parser.AddFlag("quiet", 'q', &cmd.quiet, "no progress bar and no per-layer summary");
  if (const std::optional<int> exit = ParseCommandLine(parser, args)) return *exit;
  return Quantize(cmd);
}

}  // namespace fp4lm
