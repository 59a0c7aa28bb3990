// Google Benchmark of the exact W4A4 GEMM (kernels/cpu/fp4_gemm.h) on real layer shapes, next
// to the FP32 matmul it replaces: GB/s of streamed weight bytes at m = 1 (decode) and GOP/s
// (2 m n k) at m = 512 (prefill), and for m > 1 that rate as a fraction of the int8
// dot-product peak measured in the same process ("of_peak", kernels/cpu/int8_peak.h). Also
// times activation quantization. ENGINE_BENCH_THREADS sets the pool size (default: all cores);
// ENGINE_BENCH_ISA forces a path (scalar, avx2, avxvnni, avx512vnni). The CPU column of
// BM_Fp4Gemm is the CPU time of the whole process (all pool threads): on a shared,
// oversubscribed machine the real-time rates only show the share of the cores this process
// got, while 2 m n k / CPU time still shows the kernel's per-core throughput.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/int8_peak.h"
#include "kernels/cpu/memory_bandwidth.h"
#include "kernels/cpu/ops_cpu.h"

namespace engine::kernels {
namespace {

int BenchThreads() {
  const char* env = std::getenv("ENGINE_BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 0;
}

Fp4GemmIsa BenchIsa() {
  const char* env = std::getenv("ENGINE_BENCH_ISA");
  if (env == nullptr) return Fp4GemmIsa::kAuto;
  for (Fp4GemmIsa isa : SupportedFp4GemmIsas()) {
    if (std::strcmp(env, Fp4GemmIsaName(isa)) == 0) return isa;
  }
  return Fp4GemmIsa::kAuto;
}

std::vector<uint8_t> RandomCodes(int64_t bytes, std::mt19937& rng) {
  std::vector<uint8_t> codes(static_cast<size_t>(bytes));
  for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
  return codes;
}

void BM_Fp4Gemm(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::mt19937 rng(1);
  const std::vector<uint8_t> w_codes = RandomCodes(n * k / 2, rng);
  const std::vector<uint8_t> a_codes = RandomCodes(m * k / 2, rng);
  std::vector<float> row_scale(static_cast<size_t>(n), 0.01f), y(static_cast<size_t>(m * n));
  auto w = PrepareFp4Weight(w_codes.data(), row_scale.data(), nullptr, Fp4Kind::kE2M1, n, k);
  if (!w.ok()) {
    state.SkipWithError(w.status().ToString().c_str());
    return;
  }
  ThreadPool pool(BenchThreads());
  Fp4GemmScratch scratch;
  const Fp4GemmArgs args = {.a_codes = a_codes.data(),
                            .a_kind = Fp4Kind::kE2M1,
                            .a_scale = 0.5f,
                            .w = &*w,
                            .y = y.data(),
                            .m = m,
                            .isa = BenchIsa(),
                            .scratch = &scratch};
  for (auto _ : state) {
    Fp4Gemm(pool, args);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(n * k / 2),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  if (m > 1) {  // a decode GEMV is bound by bandwidth (BM_Fp4GemvCold), not by the peak
    if (const double peak = MeasureInt8DotPeak(pool, 3).ops_per_second; peak > 0) {
      state.counters["of_peak"] = benchmark::Counter(
          2.0 * m * n * k / peak, benchmark::Counter::kIsIterationInvariantRate);
    }
  }
  state.counters["threads"] = pool.num_threads();
  state.SetLabel(Fp4GemmIsaName(BenchIsa() == Fp4GemmIsa::kAuto ? BestFp4GemmIsa() : BenchIsa()));
}

// Decode as a model runs it: each call reads a different copy of the weight, and the copies
// together (>= 256 MiB) are far larger than any cache, so every byte comes from DRAM. Reports
// GB/s of weight bytes and that as a fraction of MeasureReadBandwidth in the same process
// ("of_bandwidth"): the kernel's share of the decode bound.
void BM_Fp4GemvCold(benchmark::State& state) {
  const int64_t n = state.range(0), k = state.range(1);
  const int64_t copies = std::max<int64_t>(2, (int64_t{256} << 20) / (n * k / 2));
  std::mt19937 rng(1);
  const std::vector<uint8_t> a_codes = RandomCodes(k / 2, rng);
  std::vector<float> row_scale(static_cast<size_t>(n), 0.01f), y(static_cast<size_t>(n));
  std::vector<PreparedFp4Weight> weights;
  for (int64_t c = 0; c < copies; ++c) {
    const std::vector<uint8_t> w_codes = RandomCodes(n * k / 2, rng);
    auto w = PrepareFp4Weight(w_codes.data(), row_scale.data(), nullptr, Fp4Kind::kE2M1, n, k);
    if (!w.ok()) {
      state.SkipWithError(w.status().ToString().c_str());
      return;
    }
    weights.push_back(*std::move(w));
  }
  ThreadPool pool(BenchThreads());
  const double bandwidth = MeasureReadBandwidth(pool, int64_t{512} << 20, 3);
  Fp4GemmScratch scratch;
  Fp4GemmArgs args = {.a_codes = a_codes.data(),
                      .a_kind = Fp4Kind::kE2M1,
                      .a_scale = 0.5f,
                      .y = y.data(),
                      .m = 1,
                      .isa = BenchIsa(),
                      .scratch = &scratch};
  int64_t next = 0;
  for (auto _ : state) {
    args.w = &weights[static_cast<size_t>(next)];
    next = (next + 1) % copies;
    Fp4Gemm(pool, args);
    benchmark::DoNotOptimize(y.data());
  }
  const double bytes = static_cast<double>(n * k / 2 + n * 4);  // codes + row scales
  state.counters["GB/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.counters["of_bandwidth"] = benchmark::Counter(
      bytes / bandwidth, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = pool.num_threads();
  state.SetLabel(Fp4GemmIsaName(BenchIsa() == Fp4GemmIsa::kAuto ? BestFp4GemmIsa() : BenchIsa()));
}

// The FP32 baseline on the same shapes, in the same process (kernels/cpu/ops_cpu.h).
void BM_MatMulF32(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k)), w(static_cast<size_t>(n * k)),
      y(static_cast<size_t>(m * n));
  for (float& v : x) v = dist(rng);
  for (float& v : w) v = dist(rng);
  ThreadPool pool(BenchThreads());
  for (auto _ : state) {
    MatMulF32(pool, x.data(), w.data(), nullptr, y.data(), m, n, k);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(n * k * sizeof(float)),
                                              benchmark::Counter::kIsIterationInvariantRate,
                                              benchmark::Counter::kIs1000);
  state.counters["GOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
  state.counters["threads"] = pool.num_threads();
}

void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1);
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (float& v : x) v = dist(rng);
  std::vector<uint8_t> codes(static_cast<size_t>(m * k / 2));
  for (auto _ : state) {
    QuantizeActivations(x.data(), m, k, Fp4Kind::kE2M1, 0.75f, codes.data(), BenchIsa());
    benchmark::DoNotOptimize(codes.data());
  }
  state.counters["Gelem/s"] =
      benchmark::Counter(static_cast<double>(m * k), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}

// {m, n, k}: SmolLM2-135M gate/up (1536 x 576) and down (576 x 1536), TinyLlama-1.1B attention
// (2048 x 2048), gate/up (5632 x 2048) and down (2048 x 5632).
void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m", "n", "k"});
  for (int64_t m : {1, 512}) {
    b->Args({m, 1536, 576});
    b->Args({m, 576, 1536});
    b->Args({m, 2048, 2048});
    b->Args({m, 5632, 2048});
    b->Args({m, 2048, 5632});
  }
}

BENCHMARK(BM_Fp4Gemm)
    ->Apply(Shapes)
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
// Small m at the TinyLlama attention shape: where the tile (AMX) path starts to beat the
// vector one, which sets kAmxMinRows.
BENCHMARK(BM_Fp4Gemm)
    ->ArgNames({"m", "n", "k"})
    ->ArgsProduct({{2, 4, 8, 12, 16, 32, 64}, {2048}, {2048}})
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();
// TinyLlama-1.1B decode shapes, weights from DRAM.
BENCHMARK(BM_Fp4GemvCold)
    ->ArgNames({"n", "k"})
    ->Args({2048, 2048})
    ->Args({5632, 2048})
    ->Args({2048, 5632})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_MatMulF32)->Apply(Shapes)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_QuantizeActivations)
    ->ArgNames({"m", "k"})
    ->Args({1, 2048})
    ->Args({512, 576})
    ->Args({512, 5632})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace engine::kernels
