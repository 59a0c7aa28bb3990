// `fp4lm info`: loads a model and prints what the engine knows about it (engine::ModelInfo):
// architecture, dimensions, parameter count, tensor dtypes, tokenizer and compute path.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"

namespace fp4lm {
namespace {

// 134515008 -> "134.52 M".
std::string FormatCount(int64_t n) {
  if (n >= 1'000'000'000) return fmt::format("{:.2f} B", n / 1e9);
  if (n >= 1'000'000) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1'000) return fmt::format("{:.2f} K", n / 1e3);
  return fmt::format("{}", n);
}

std::string FormatShape(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return out + "]";
}

// "Q4_1 211, F32 61, Q6_K 1": most common first, then by name.
std::string DtypeSummary(const std::vector<engine::TensorSummary>& tensors) {
  std::map<std::string, int> counts;
  for (const auto& t : tensors) ++counts[t.dtype];
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string out;
  for (const auto& [dtype, count] : sorted) {
    out += fmt::format("{}{} {}", out.empty() ? "" : ", ", dtype, count);
  }
  return out;
}

// The first line of the template (at most 60 bytes) and its size, so a long Jinja template
// does not flood the terminal.
std::string TemplateSummary(const std::string& tmpl) {
  if (tmpl.empty()) return "none";
  const size_t lines = 1 + static_cast<size_t>(std::count(tmpl.begin(), tmpl.end(), '\n'));
  std::string first = tmpl.substr(0, tmpl.find('\n'));
  if (first.size() > 60) first = first.substr(0, 60) + "...";
  return fmt::format("{} ({} chars, {} lines)", first, tmpl.size(), lines);
}

std::string TokenText(int32_t id) { return id < 0 ? "none" : fmt::format("{}", id); }

void PrintRow(std::string_view key, std::string_view value) {
  // At least one space between key and value, however long the key ("  value_rotation").
  fmt::print("{:<16} {}\n", key, value);
}

void PrintInfo(const engine::ModelInfo& m, bool list_tensors) {
  PrintRow("model", m.path);
  PrintRow("format", m.format);
  PrintRow("architecture", m.architecture);
  PrintRow("model dim", fmt::format("{}", m.model_dim));
  PrintRow("ffn dim", fmt::format("{}", m.ffn_dim));
  PrintRow("layers", fmt::format("{}", m.n_layers));
  PrintRow("heads", fmt::format("{}", m.n_heads));
  PrintRow("kv heads", fmt::format("{}", m.n_kv_heads));
  PrintRow("head dim", fmt::format("{}", m.head_dim));
  PrintRow("vocab", fmt::format("{}", m.vocab_size));
  PrintRow("context", fmt::format("{}", m.max_seq_len));
  PrintRow("norm eps", fmt::format("{:g}", m.norm_eps));
  PrintRow("rope", fmt::format("theta {:g}, {}", m.rope_theta, m.rope_style));
  PrintRow("tied embeddings", m.tied_embeddings ? "yes" : "no");
  PrintRow("parameters", FormatCount(m.parameter_count));
  PrintRow("tensors", fmt::format("{}: {}", m.tensors.size(), DtypeSummary(m.tensors)));
  PrintRow("tokenizer", m.tokenizer);
  PrintRow("bos / eos", fmt::format("{} / {}", TokenText(m.bos_id), TokenText(m.eos_id)));
  PrintRow("chat template", TemplateSummary(m.chat_template));
  PrintRow("weights", m.weight_format);
  for (const auto& [key, value] : m.quantization) PrintRow("  " + key, value);
  PrintRow("compute path", m.compute_path);
  PrintRow("cpu features", m.cpu_features);
  PrintRow("threads", fmt::format("{}", m.num_threads));
  PrintRow("library", fmt::format("fp4lm {}", engine::Version()));
  if (!list_tensors) return;
  size_t name_width = 0;
  size_t dtype_width = 0;
  for (const auto& t : m.tensors) {
    name_width = std::max(name_width, t.name.size());
    dtype_width = std::max(dtype_width, t.dtype.size());
  }
  fmt::print("\n");
  for (const auto& t : m.tensors) {
    fmt::print("{:<{}}  {:<{}}  {}\n", t.name, name_width, t.dtype, dtype_width,
               FormatShape(t.shape));
  }
}

}  // namespace

int RunInfo(std::span<const std::string> args) {
  engine::ModelOptions options;
  bool list_tensors = false;
  ArgParser parser("fp4lm info", "fp4lm info -m MODEL [--tokenizer FILE] [--tensors]",
                   "Loads a model and prints its architecture, dimensions, parameter count,\n"
                   "tensor types, tokenizer and the compute path the engine chose.");
  parser
      .AddString("model", 'm', &options.path, "MODEL",
                 "a .gguf file, a llama2.c .bin or a Hugging Face directory")
      .Required();
  parser.AddString("tokenizer", 0, &options.tokenizer_path, "FILE",
                   "tokenizer to use instead of the model's own");
  parser.AddInt("threads", 't', &options.num_threads, "N", "CPU threads; 0 = all").AtLeast(0);
  parser.AddFlag("tensors", 0, &list_tensors, "also list every tensor: name, dtype, shape");
  if (const std::optional<int> exit = ParseCommandLine(parser, args)) return *exit;

  absl::StatusOr<std::unique_ptr<engine::Model>> model = engine::Model::Load(options);
  if (!model.ok()) {
    fmt::print(stderr, "fp4lm info: {}\n", std::string(model.status().message()));
    return kExitError;
  }
  PrintInfo((*model)->info(), list_tensors);
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace fp4lm
