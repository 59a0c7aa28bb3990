// `fp4lm bench`: llama-bench for fp4lm. Times prompt processing (ppN) and generation (tgN) of a
// model file or of a named architecture shape with random weights, in each linear type
// (W4A4, W4A16, F16, F32), prints llama-bench's table, and puts each generation row against
// its memory-bandwidth bound and each W4A4 prompt row against its int8 compute bound, both
// measured in the same run: bandwidth / bytes one token reads, and the int8 dot-product peak /
// the int8 operations of one prompt token's linears.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "engine/bench_model.h"
#include "engine/engine.h"
#include "fmt/core.h"
#include "fp4lm/commands.h"
#include "kernels/core/cpu_features.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/int8_peak.h"
#include "kernels/cpu/memory_bandwidth.h"
#include "kernels/cpu/thread_pool.h"
#include "nlohmann/json.hpp"

namespace fp4lm {
namespace {

using engine::bench::BenchModel;
using engine::bench::LinearType;
using engine::bench::LinearTypeName;

struct BenchOptions {
  std::string model_path;
  std::string shape;
  std::string types = "w4a4,w4a16,f16,f32";
  int32_t n_prompt = 512;
  int32_t n_gen = 128;
  int32_t reps = 3;
  int32_t threads = 0;
  uint64_t seed = 0;
  bool json = false;
};

struct Row {
  std::string model;
  LinearType type = LinearType::kF32;
  int64_t size_bytes = 0;
  int64_t params = 0;
  std::string test;  // "pp512" / "tg128"
  int32_t n_prompt = 0, n_gen = 0;
  std::vector<double> samples;  // tokens/s per repetition
  double mean = 0, sd = 0;
  double read_bytes_per_second = 0;  // tg: the bandwidth its bound uses
  // tokens/s at the row's bound: tg at the memory read bandwidth, W4A4 pp at the int8 peak;
  // 0 where there is none (pp of the float types, or no int8 peak measured).
  double bound = 0;
  std::string skipped;  // why the type did not run
};

void Summarize(Row& r) {
  double sum = 0;
  for (double s : r.samples) sum += s;
  r.mean = r.samples.empty() ? 0 : sum / r.samples.size();
  double var = 0;
  for (double s : r.samples) var += (s - r.mean) * (s - r.mean);
  r.sd = r.samples.size() > 1 ? std::sqrt(var / (r.samples.size() - 1)) : 0;
}

std::string Size(int64_t bytes) {
  return bytes >= (int64_t{1} << 30) ? fmt::format("{:.2f} GiB", bytes / 1073741824.0)
                                     : fmt::format("{:.2f} MiB", bytes / 1048576.0);
}

std::string Params(int64_t n) {
  return n >= 1'000'000'000 ? fmt::format("{:.2f} B", n / 1e9) : fmt::format("{:.2f} M", n / 1e6);
}

// The machine's two ceilings, measured at the start of the run, and the probe that measures the
// bandwidth again for each tg row.
struct Ceilings {
  double read_bytes_per_second = 0;
  engine::kernels::Int8Peak int8;
  engine::kernels::ReadBandwidthProbe* bandwidth_probe = nullptr;
};

// Up to 1 GiB, far beyond any cache, read as the decode kernels read (threads split it). The
// probe's buffer stays allocated next to each model (BenchModel::CreateRandom admits models up to
// 80% of memory), so it takes at most 1/20 of the machine's memory: 400 MiB on an 8 GiB one.
int64_t BandwidthProbeBytes() {
  const int64_t memory = engine::bench::PhysicalMemoryBytes();
  return memory > 0 ? std::min(int64_t{1} << 30, memory / 20) : int64_t{1} << 30;
}
constexpr int kBandwidthProbeReps = 3;

// Runs the tests of one model: a short warm-up of each (it faults in every weight page and
// wakes the threads), then `reps` timed runs.

absl::Status RunTests(BenchModel& m, const std::string& name, const BenchOptions& o,
                      engine::kernels::ThreadPool& pool, const Ceilings& ceilings,
                      std::vector<Row>& rows) {
  const Row base{.model = name, .type = m.type(), .size_bytes = m.weight_bytes(),
                 .params = m.config().ParameterCount()};
  if (o.n_prompt > 0) {
    Row r = base;
    r.test = fmt::format("pp{}", o.n_prompt);
    r.n_prompt = o.n_prompt;
    absl::StatusOr<double> warm = m.TimePrompt(std::min(o.n_prompt, 32), pool);
    if (!warm.ok()) return warm.status();
    for (int i = 0; i < o.reps; ++i) {
      absl::StatusOr<double> s = m.TimePrompt(o.n_prompt, pool);
      if (!s.ok()) return s.status();
      r.samples.push_back(o.n_prompt / *s);
    }
    Summarize(r);
    if (m.type() == LinearType::kW4A4) {  // 2 int8 operations per multiply-add
      r.bound = ceilings.int8.ops_per_second / (2.0 * static_cast<double>(m.LinearMacsPerToken()));
    }
    rows.push_back(r);
  }
  if (o.n_gen > 0) {
    Row r = base;
    r.test = fmt::format("tg{}", o.n_gen);
    r.n_gen = o.n_gen;
    absl::StatusOr<double> warm = m.TimeGenerate(std::min(o.n_gen, 16), pool);
    if (!warm.ok()) return warm.status();
    // On a shared machine the read bandwidth swings by half within a minute (28 to 58 GB/s
    // seen on one 2-core VM), so one figure from the start of the run can put a later tg row
    // far above or below its true share. The row's bandwidth is the mean of probes taken right
    // before each timed run and after the last: what the machine offered while the row ran.
    double bandwidth_sum = ceilings.bandwidth_probe->Measure(kBandwidthProbeReps);
    for (int i = 0; i < o.reps; ++i) {
      absl::StatusOr<double> s = m.TimeGenerate(o.n_gen, pool);
      if (!s.ok()) return s.status();
      r.samples.push_back(o.n_gen / *s);
      bandwidth_sum += ceilings.bandwidth_probe->Measure(kBandwidthProbeReps);
    }
    Summarize(r);
    r.read_bytes_per_second = bandwidth_sum / (o.reps + 1);
    // Generation reads the KV cache of positions 0 .. n-1: on average n/2 of them.
    r.bound = r.read_bytes_per_second / static_cast<double>(m.DecodeBytesPerToken(o.n_gen / 2));
    rows.push_back(r);
  }
  return absl::OkStatus();
}

const Row* Find(const std::vector<Row>& rows, LinearType type, const std::string& test) {
  for (const Row& r : rows) {
    if (r.type == type && r.test == test && r.skipped.empty()) return &r;
  }
  return nullptr;
}

// "W4A4 / F16: pp512 3.10x, tg128 3.32x" for the pairs present.
std::vector<std::string> Ratios(const std::vector<Row>& rows, const BenchOptions& o) {
  std::vector<std::string> out;
  std::vector<std::string> tests;
  if (o.n_prompt > 0) tests.push_back(fmt::format("pp{}", o.n_prompt));
  if (o.n_gen > 0) tests.push_back(fmt::format("tg{}", o.n_gen));
  for (LinearType other : {LinearType::kF16, LinearType::kW4A16, LinearType::kF32}) {
    std::string line;
    for (const std::string& t : tests) {
      const Row* a = Find(rows, LinearType::kW4A4, t);
      const Row* b = Find(rows, other, t);
      if (a == nullptr || b == nullptr || b->mean <= 0) continue;
      line += fmt::format("{}{} {:.2f}x", line.empty() ? "" : ", ", t, a->mean / b->mean);
    }
    if (!line.empty()) out.push_back(fmt::format("W4A4 / {}: {}", LinearTypeName(other), line));
  }
  return out;
}

void PrintTable(const std::vector<Row>& rows, int threads, const std::string& backend) {
  fmt::print("| model | size | params | backend | threads | test | t/s | % of bound |\n");
  fmt::print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    if (!r.skipped.empty()) {
      fmt::print("| {} | {} | {} | {} | {} | - | skipped: {} | |\n", r.model, Size(r.size_bytes),
                 Params(r.params), backend, threads, r.skipped);
      continue;
    }
    const std::string bound =
        r.bound > 0 ? fmt::format("{:.0f}% of {:.1f}", 100 * r.mean / r.bound, r.bound) : "";
    fmt::print("| {} | {} | {} | {} | {} | {} | {:.2f} ± {:.2f} | {} |\n", r.model,
               Size(r.size_bytes), Params(r.params), backend, threads, r.test, r.mean, r.sd, bound);
  }
}

std::string Json(const std::vector<Row>& rows, int threads, const Ceilings& ceilings,
                 const std::string& backend, const std::vector<std::string>& ratios) {
  using Json = nlohmann::ordered_json;
  Json results = Json::array();
  for (const Row& r : rows) {
    Json j = {{"model", r.model},
              {"type", LinearTypeName(r.type)},
              {"model_size", r.size_bytes},
              {"model_n_params", r.params},
              {"n_threads", threads}};
    if (!r.skipped.empty()) {
      j["skipped"] = r.skipped;
    } else {
      j["test"] = r.test;
      j["n_prompt"] = r.n_prompt;
      j["n_gen"] = r.n_gen;
      j["avg_ts"] = r.mean;
      j["stddev_ts"] = r.sd;
      j["samples_ts"] = r.samples;
      if (r.read_bytes_per_second > 0) j["read_bytes_per_s"] = r.read_bytes_per_second;
      if (r.bound > 0) {
        j["bound_ts"] = r.bound;
        j["percent_of_bound"] = 100 * r.mean / r.bound;
      }
    }
    results.push_back(j);
  }
  Json out = {{"backend", backend},
              {"cpu_features", engine::kernels::DetectCpuFeatures().ToString()},
              {"memory_read_bandwidth_bytes_per_s", ceilings.read_bytes_per_second},
              {"int8_peak_ops_per_s", ceilings.int8.ops_per_second},
              {"int8_peak_instruction", ceilings.int8.instruction},
              {"ratios", ratios},
              {"results", results}};
  return out.dump(2);
}

int Fail(const absl::Status& s) {
  fmt::print(stderr, "fp4lm bench: {}\n", std::string(s.message()));
  return kExitError;
}

int Bench(const BenchOptions& o) {
  std::vector<LinearType> types;
  for (absl::string_view t : absl::StrSplit(o.types, ',', absl::SkipEmpty())) {
    absl::StatusOr<LinearType> type = engine::bench::ParseLinearType(std::string(t));
    if (!type.ok()) return Fail(type.status());
    if (std::find(types.begin(), types.end(), *type) == types.end()) types.push_back(*type);
  }
  engine::kernels::ThreadPool pool(o.threads);
  const int threads = pool.num_threads();
  const std::string backend = fmt::format(
      "CPU ({})", engine::kernels::Fp4GemmPathDescription());
  engine::kernels::ReadBandwidthProbe bandwidth_probe(pool, BandwidthProbeBytes());
  const Ceilings ceilings = {.read_bytes_per_second = bandwidth_probe.Measure(kBandwidthProbeReps),
                             .int8 = engine::kernels::MeasureInt8DotPeak(pool, 5),
                             .bandwidth_probe = &bandwidth_probe};
  fmt::print(stderr, "fp4lm bench: memory read bandwidth {:.1f} GB/s, int8 peak {:.0f} GOP/s "
             "({} threads)\n",
             ceilings.read_bytes_per_second / 1e9, ceilings.int8.ops_per_second / 1e9, threads);

  std::vector<Row> rows;
  if (!o.model_path.empty()) {
    absl::StatusOr<std::unique_ptr<engine::Model>> model =
        engine::Model::Load({.path = o.model_path, .num_threads = threads});
    if (!model.ok()) return Fail(model.status());
    absl::StatusOr<std::unique_ptr<BenchModel>> m = BenchModel::FromModel(**model);
    if (!m.ok()) return Fail(m.status());
    const std::string name = fmt::format("{} {}", o.model_path.substr(o.model_path.rfind('/') + 1),
                                         LinearTypeName((*m)->type()));
    if (absl::Status s = RunTests(**m, name, o, pool, ceilings, rows); !s.ok()) return Fail(s);
  } else {
    absl::StatusOr<engine::model::ModelConfig> config = engine::bench::ShapeConfig(o.shape);
    if (!config.ok()) return Fail(config.status());
    for (LinearType type : types) {
      const std::string name = fmt::format("{} {}", o.shape, LinearTypeName(type));
      fmt::print(stderr, "fp4lm bench: {}: generating random weights (seed {})\n", name, o.seed);
      absl::StatusOr<std::unique_ptr<BenchModel>> m =
          BenchModel::CreateRandom(*config, type, o.seed);
      if (!m.ok()) {
        if (!absl::IsResourceExhausted(m.status())) return Fail(m.status());
        rows.push_back(Row{.model = name, .type = type, .params = config->ParameterCount(),
                           .skipped = std::string(m.status().message())});
        continue;
      }
      fmt::print(stderr, "fp4lm bench: {}: running\n", name);
      if (absl::Status s = RunTests(**m, name, o, pool, ceilings, rows); !s.ok()) return Fail(s);
    }
  }

  const std::vector<std::string> ratios = Ratios(rows, o);
  if (o.json) {
    fmt::print("{}\n", Json(rows, threads, ceilings, backend, ratios));
    return kExitOk;
  }
  PrintTable(rows, threads, backend);
  double low = ceilings.read_bytes_per_second, high = low;
  for (const Row& r : rows) {
    if (r.read_bytes_per_second <= 0) continue;
    low = std::min(low, r.read_bytes_per_second);
    high = std::max(high, r.read_bytes_per_second);
  }
  fmt::print("\nmemory read bandwidth: {:.1f}-{:.1f} GB/s with {} threads (at the start and during "
             "each tg row); a tg row's bound = the mean of the probes before each of its runs and "
             "after the last / bytes one token reads (weights, head, KV cache at the mean "
             "position)\n",
             low / 1e9, high / 1e9, threads);
  if (ceilings.int8.ops_per_second > 0) {
    fmt::print("int8 peak: {:.0f} GOP/s with {} threads ({}); a w4a4 pp row's bound = int8 peak / "
               "2 x the multiply-adds of one token's linears\n",
               ceilings.int8.ops_per_second / 1e9, threads, ceilings.int8.instruction);
  }
  for (const std::string& r : ratios) fmt::print("{}\n", r);
  fmt::print("cpu: {}\n", engine::kernels::DetectCpuFeatures().ToString());
  return kExitOk;
}

}  // namespace

int RunBench(std::span<const std::string> args) {
  BenchOptions o;
  ArgParser parser(
      "fp4lm bench",
      "fp4lm bench (-m MODEL | --shape NAME) [--types LIST] [-p N] [-n N] [-r N] [-t N] [--json]",
      "Times prompt processing (pp) and token generation (tg) like llama-bench: a model file as "
      "loaded, or a named shape (tinyllama-1.1b, llama2-7b, smollm2-135m) with seeded random "
      "weights made in process in each --types (speed does not depend on the values). Generation "
      "rows show the share of their memory-bandwidth bound, W4A4 prompt rows the share of the "
      "int8 dot-product peak, both measured in the same run.");
  parser.AddString("model", 'm', &o.model_path, "FILE", "model file (runs as loaded)");
  parser.AddString("shape", 0, &o.shape, "NAME", "tinyllama-1.1b, llama2-7b or smollm2-135m");
  parser.AddString("types", 0, &o.types, "LIST", "--shape: comma-separated w4a4,w4a16,f16,f32");
  parser.AddInt("n-prompt", 'p', &o.n_prompt, "N", "prompt tokens (0 = no pp test)").AtLeast(0);
  parser.AddInt("n-gen", 'n', &o.n_gen, "N", "generated tokens (0 = no tg test)").AtLeast(0);
  parser.AddInt("repetitions", 'r', &o.reps, "N", "timed runs per test").AtLeast(1);
  parser.AddInt("threads", 't', &o.threads, "N", "CPU threads; 0 = all").AtLeast(0);
  parser.AddUint64("seed", 0, &o.seed, "S", "--shape: seed of the random weights");
  parser.AddFlag("json", 0, &o.json, "print the results as JSON");
  if (std::optional<int> exit = ParseCommandLine(parser, args)) return *exit;
  auto usage = [&](const std::string& message) {
    fmt::print(stderr, "fp4lm bench: {}\nRun 'fp4lm bench --help' for usage.\n", message);
    return kExitUsage;
  };
  if (o.model_path.empty() == o.shape.empty()) return usage("give either -m MODEL or --shape NAME");
  if (!o.model_path.empty() && parser.WasSet("types")) {
    return usage("--types is for --shape; a model file runs in its own type");
  }
  if (o.n_prompt == 0 && o.n_gen == 0) return usage("nothing to run: -p 0 and -n 0");
  return Bench(o);
}

}  // namespace fp4lm
