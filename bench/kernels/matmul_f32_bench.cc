// Google Benchmark of the FP32 matmul (the full-precision baseline's only heavy op) on real
// layer shapes: GB/s of weights streamed at m = 1 (decode is bandwidth-bound) and GFLOP/s at
// m = 512 (prefill is compute-bound). ENGINE_BENCH_THREADS sets the pool size (default: all).
#include <cstdlib>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/cpu/ops_cpu.h"

namespace engine::kernels {
namespace {

int BenchThreads() {
  const char* env = std::getenv("ENGINE_BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 0;
}

void BM_MatMulF32(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(m * k), w(n * k), y(m * n);
  for (float& v : x) v = dist(rng);
  for (float& v : w) v = dist(rng);
  ThreadPool pool(BenchThreads());
  for (auto _ : state) {
    MatMulF32(pool, x.data(), w.data(), nullptr, y.data(), m, n, k);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(
      static_cast<double>(n * k * sizeof(float)), benchmark::Counter::kIsIterationInvariantRate,
      benchmark::Counter::kIs1000);
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = pool.num_threads();
}

BENCHMARK(BM_MatMulF32)
    ->ArgNames({"m", "n", "k"})
    ->Args({1, 1536, 576})      // SmolLM2-135M gate/up
    ->Args({1, 49152, 576})     // SmolLM2-135M head
    ->Args({1, 2048, 2048})     // TinyLlama-1.1B attention
    ->Args({1, 5632, 2048})     // TinyLlama-1.1B gate/up
    ->Args({512, 1536, 576})
    ->Args({512, 2048, 2048})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace engine::kernels
