#include "kernels/cpu/int8_peak.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "kernels/core/cpu_features.h"

namespace engine::kernels {
namespace {

// Loop trips per timed pass and thread: 12 x 2^21 vector multiply-adds, 10-30 ms on a
// 3 GHz core.
constexpr int64_t kIterations = int64_t{1} << 21;

// Each loop is inline assembly, so that the instructions timed are exactly the ones named
// (with intrinsics, GCC kept some accumulators in memory, and the store-to-load latency, not the
// multiply ports, was the limit). The operands' values do not matter: integer multiply-adds
// take the same time for any. One trip of each loop does `kChains` independent multiply-adds
// of a full vector.
constexpr int kChains = 12;

// vpdpbusd has a latency of about 5 cycles and up to two ports: 12 chains keep both busy.
void DotChainsAvx512Vnni(int64_t trips) {
  asm volatile(
      "vpxord %%zmm0, %%zmm0, %%zmm0\n\t"
      "vpxord %%zmm1, %%zmm1, %%zmm1\n"
      "1:\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm2\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm3\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm4\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm5\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm6\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm7\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm8\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm9\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm10\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm11\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm12\n\t"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm13\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : "+r"(trips)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13");
}

void DotChainsAvxVnni(int64_t trips) {
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n"
      "1:\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm2\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm3\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm4\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm5\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm6\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm7\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm8\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm9\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm10\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm11\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm12\n\t"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm13\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : "+r"(trips)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13");
}

// An int16 pair sum (vpmaddubsw) into a temporary, then one add into its accumulator: the
// product does not depend on the accumulator, so each chain is one add deep. The 12
// multiply-adds of a trip go through 6 temporaries (ymm2-7) into 6 accumulators (ymm8-13),
// each used twice.
void DotChainsAvx2(int64_t trips) {
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"
      "vpxor %%ymm1, %%ymm1, %%ymm1\n"
      "1:\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm2\n\t"
      "vpaddw %%ymm2, %%ymm8, %%ymm8\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm3\n\t"
      "vpaddw %%ymm3, %%ymm9, %%ymm9\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm4\n\t"
      "vpaddw %%ymm4, %%ymm10, %%ymm10\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm5\n\t"
      "vpaddw %%ymm5, %%ymm11, %%ymm11\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm6\n\t"
      "vpaddw %%ymm6, %%ymm12, %%ymm12\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm7\n\t"
      "vpaddw %%ymm7, %%ymm13, %%ymm13\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm2\n\t"
      "vpaddw %%ymm2, %%ymm8, %%ymm8\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm3\n\t"
      "vpaddw %%ymm3, %%ymm9, %%ymm9\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm4\n\t"
      "vpaddw %%ymm4, %%ymm10, %%ymm10\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm5\n\t"
      "vpaddw %%ymm5, %%ymm11, %%ymm11\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm6\n\t"
      "vpaddw %%ymm6, %%ymm12, %%ymm12\n\t"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm7\n\t"
      "vpaddw %%ymm7, %%ymm13, %%ymm13\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : "+r"(trips)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
        "xmm10", "xmm11", "xmm12", "xmm13");
}

}  // namespace

Int8Peak MeasureInt8DotPeak(ThreadPool& pool, int reps) {
  const CpuFeatures f = DetectCpuFeatures();
  void (*chains)(int64_t) = nullptr;
  Int8Peak peak;
  double ops_per_trip = 0;  // 2 x the multiply-adds of one loop trip
  if (f.avx512f && f.avx512vnni) {
    chains = DotChainsAvx512Vnni;
    peak.instruction = "avx512vnni vpdpbusd zmm";
    ops_per_trip = 2.0 * kChains * 64;
  } else if (f.avx2 && f.avxvnni) {
    chains = DotChainsAvxVnni;
    peak.instruction = "avxvnni vpdpbusd ymm";
    ops_per_trip = 2.0 * kChains * 32;
  } else if (f.avx2) {
    chains = DotChainsAvx2;
    peak.instruction = "avx2 vpmaddubsw + vpaddw ymm";
    ops_per_trip = 2.0 * kChains * 32;
  } else {
    return peak;
  }
  const int threads = pool.num_threads();
  chains(kIterations / 8);  // wake the core to its running clock before the first pass
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.ParallelFor(threads, [&](int, int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) chains(kIterations);
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    peak.ops_per_second =
        std::max(peak.ops_per_second, ops_per_trip * kIterations * threads / seconds);
  }
  return peak;
}

}  // namespace engine::kernels
