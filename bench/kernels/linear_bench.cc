// The four linear kernels of issue 4 side by side on real layer shapes (n x k = out x in of
// TinyLlama-1.1B and Llama-2-7B), so the W4A4 comparison is against baselines built with the
// same care: F32 (MatMulF32), F16 weights (MatMulF16), W4A16 (the W4A4 weights with FP32
// activations) and W4A4 (Fp4Gemm; activation codes prepared outside the timed loop). Then the
// output head at vocabulary shapes in F16 (the F16 model's) and as int8 rows (MatMulI8, the
// W4A4 model's).
// Counters: "GB/s" at m = 1 = weight bytes read per call / time (F32 4 B, F16 2 B, int8 1 B,
// FP4 0.5 B per weight + 4 B per row scale; printed with SI prefixes, "12G/s" = 12 GB/s);
// "GOP/s" at m = 512 = 2 m n k / time. ENGINE_BENCH_THREADS sets the pool size (default 2).
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/core/half.h"
#include "kernels/cpu/f16_matmul.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/w4a16_gemm.h"

namespace engine::kernels {
namespace {

int BenchThreads() {
  const char* env = std::getenv("ENGINE_BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 2;
}

// xorshift: filling 45 M weights with std::mt19937 would dominate every benchmark's setup.
struct FastRandom {
  uint64_t state = 0x9E3779B97F4A7C15ull;
  uint32_t Next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<uint32_t>(state >> 32);
  }
  float Uniform() { return static_cast<float>(Next()) * (2.0f / 4294967296.0f) - 1.0f; }
};

std::vector<float> RandomFloats(int64_t count, FastRandom& rng) {
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = rng.Uniform();
  return v;
}

std::vector<uint8_t> RandomBytes(int64_t count, FastRandom& rng) {
  std::vector<uint8_t> v(static_cast<size_t>(count));
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng.Next());
  return v;
}

void SetCounters(benchmark::State& state, double weight_bytes, int threads) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  if (m == 1) {
    state.counters["GB/s"] = benchmark::Counter(
        weight_bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  } else {
    state.counters["GOP/s"] =
        benchmark::Counter(2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate,
                           benchmark::Counter::kIs1000);
  }
  state.counters["threads"] = threads;
}

void BM_F32(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  FastRandom rng;
  const std::vector<float> x = RandomFloats(m * k, rng), w = RandomFloats(n * k, rng);
  std::vector<float> y(static_cast<size_t>(m * n));
  ThreadPool pool(BenchThreads());
  for (auto _ : state) {
    MatMulF32(pool, x.data(), w.data(), nullptr, y.data(), m, n, k);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(state, 4.0 * n * k, pool.num_threads());
}

void BM_F16(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  FastRandom rng;
  const std::vector<float> x = RandomFloats(m * k, rng);
  std::vector<uint16_t> w(static_cast<size_t>(n * k));
  for (uint16_t& h : w) h = F32ToF16(rng.Uniform());
  std::vector<float> y(static_cast<size_t>(m * n));
  ThreadPool pool(BenchThreads());
  for (auto _ : state) {
    MatMulF16(pool, x.data(), w.data(), nullptr, y.data(), m, n, k);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(state, 2.0 * n * k, pool.num_threads());
  state.SetLabel(F16MatMulIsaName(SupportedF16MatMulIsas().back()));
}

// The output head of W4A4 models: int8 rows with per-row scales (MatMulI8).
void BM_I8(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  FastRandom rng;
  const std::vector<float> x = RandomFloats(m * k, rng);
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  for (int8_t& v : q) v = static_cast<int8_t>(static_cast<int>(rng.Next() % 255) - 127);
  const std::vector<float> scale = RandomFloats(n, rng);
  std::vector<float> y(static_cast<size_t>(m * n));
  ThreadPool pool(BenchThreads());
  for (auto _ : state) {
    MatMulI8(pool, x.data(), q.data(), scale.data(), nullptr, y.data(), m, n, k);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(state, 1.0 * n * k + 4.0 * n, pool.num_threads());
  state.SetLabel(F16MatMulIsaName(SupportedF16MatMulIsas().back()));
}

// The FP4 weight both W4A16 and W4A4 run on.
absl::StatusOr<PreparedFp4Weight> RandomFp4Weight(int64_t n, int64_t k, FastRandom& rng) {
  const std::vector<uint8_t> codes = RandomBytes(n * k / 2, rng);
  std::vector<float> row_scale = RandomFloats(n, rng);
  return PrepareFp4Weight(codes.data(), row_scale.data(), nullptr, Fp4Kind::kE2M1, n, k);
}

double Fp4WeightBytes(int64_t n, int64_t k) { return 0.5 * n * k + 4.0 * n; }

void BM_W4A16(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  FastRandom rng;
  auto w = RandomFp4Weight(n, k, rng);
  if (!w.ok()) {
    state.SkipWithError(w.status().ToString().c_str());
    return;
  }
  const std::vector<float> x = RandomFloats(m * k, rng);
  std::vector<float> y(static_cast<size_t>(m * n));
  ThreadPool pool(BenchThreads());
  const W4A16GemmArgs args = {.x = x.data(), .w = &*w, .y = y.data(), .m = m};
  for (auto _ : state) {
    W4A16Gemm(pool, args);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(state, Fp4WeightBytes(n, k), pool.num_threads());
  state.SetLabel(W4A16IsaName(SupportedW4A16Isas().back()));
}

void BM_W4A4(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  FastRandom rng;
  auto w = RandomFp4Weight(n, k, rng);
  if (!w.ok()) {
    state.SkipWithError(w.status().ToString().c_str());
    return;
  }
  const std::vector<float> x = RandomFloats(m * k, rng);
  std::vector<uint8_t> a_codes(static_cast<size_t>(m * k / 2));
  QuantizeActivations(x.data(), m, k, Fp4Kind::kE2M1, 4.0f, a_codes.data());
  std::vector<float> y(static_cast<size_t>(m * n));
  ThreadPool pool(BenchThreads());
  Fp4GemmScratch scratch;
  const Fp4GemmArgs args = {.a_codes = a_codes.data(),
                            .a_kind = Fp4Kind::kE2M1,
                            .a_scale = 0.25f,
                            .w = &*w,
                            .y = y.data(),
                            .m = m,
                            .scratch = &scratch};
  for (auto _ : state) {
    Fp4Gemm(pool, args);
    benchmark::DoNotOptimize(y.data());
  }
  SetCounters(state, Fp4WeightBytes(n, k), pool.num_threads());
  state.SetLabel(Fp4GemmPathDescription());
}

// {m, n, k}, n x k = out x in features: TinyLlama-1.1B q/o (2048 x 2048), gate/up (5632 x 2048),
// down (2048 x 5632); Llama-2-7B q/o (4096 x 4096), gate/up (11008 x 4096), down (4096 x 11008).
void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "k"});
  for (int64_t m : {1, 512}) {
    for (const auto& [n, k] : {std::pair<int64_t, int64_t>{2048, 2048}, {5632, 2048},
                               {2048, 5632}, {4096, 4096}, {11008, 4096}, {4096, 11008}}) {
      b->Args({m, n, k});
    }
  }
}

// Output heads, n x k = vocabulary x model dim: TinyLlama-1.1B and Llama-2-7B (32000 x 2048,
// 32000 x 4096), SmolLM2-135M (49152 x 576). Note that a 300 MiB L3 (as on this project's
// dev box) holds any of them across iterations: compare the rows, not against DRAM bandwidth.
void HeadShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "k"});
  for (int64_t m : {1, 512}) {
    for (const auto& [n, k] : {std::pair<int64_t, int64_t>{32000, 2048}, {32000, 4096},
                               {49152, 576}}) {
      b->Args({m, n, k});
    }
  }
}

BENCHMARK(BM_F32)->Apply(Shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_F16)->Apply(Shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_W4A16)->Apply(Shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_W4A4)->Apply(Shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_F16)->Apply(HeadShapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_I8)->Apply(HeadShapes)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace engine::kernels
