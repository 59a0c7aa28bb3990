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

// One loop: zero the inputs (v0, v1), run `body` `trips` times, leave the upper halves clean.
// All three loops use registers 0-13 only.
#define FP4LM_DOT_LOOP(zero_inputs, body)                                                      \
  asm volatile(zero_inputs "1:\n\t" body "dec %0\n\tjnz 1b\n\tvzeroupper"                     \
               : "+r"(trips)                                                                   \
               :                                                                               \
               : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",  \
                 "xmm9", "xmm10", "xmm11", "xmm12", "xmm13")

// vpdpbusd into accumulator `acc` (2-13) of register file `reg` ("zmm" or "ymm"); `prefix`
// picks the VEX form (AVX-VNNI) where the EVEX one would need AVX-512VL.
#define FP4LM_DPBUSD(prefix, reg, acc) \
  prefix "vpdpbusd %%" reg "1, %%" reg "0, %%" reg #acc "\n\t"
#define FP4LM_DPBUSD_12(prefix, reg)                                                          \
  FP4LM_DPBUSD(prefix, reg, 2) FP4LM_DPBUSD(prefix, reg, 3) FP4LM_DPBUSD(prefix, reg, 4)      \
  FP4LM_DPBUSD(prefix, reg, 5) FP4LM_DPBUSD(prefix, reg, 6) FP4LM_DPBUSD(prefix, reg, 7)      \
  FP4LM_DPBUSD(prefix, reg, 8) FP4LM_DPBUSD(prefix, reg, 9) FP4LM_DPBUSD(prefix, reg, 10)     \
  FP4LM_DPBUSD(prefix, reg, 11) FP4LM_DPBUSD(prefix, reg, 12) FP4LM_DPBUSD(prefix, reg, 13)

// vpdpbusd has a latency of about 5 cycles and up to two ports: 12 chains keep both busy.
void DotChainsAvx512Vnni(int64_t trips) {
  FP4LM_DOT_LOOP("vpxord %%zmm0, %%zmm0, %%zmm0\n\tvpxord %%zmm1, %%zmm1, %%zmm1\n",
                 FP4LM_DPBUSD_12("", "zmm"));
}

void DotChainsAvxVnni(int64_t trips) {
  FP4LM_DOT_LOOP("vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n",
                 FP4LM_DPBUSD_12("%{vex%} ", "ymm"));
}

// An int16 pair sum (vpmaddubsw) into temporary `tmp`, then one add into accumulator `acc`:
// the product does not depend on the accumulator, so each chain is one add deep. The 12
// multiply-adds of a trip go through 6 temporaries (ymm2-7) into 6 accumulators (ymm8-13),
// each used twice.
#define FP4LM_MADDUBS_ADD(tmp, acc)                  \
  "vpmaddubsw %%ymm1, %%ymm0, %%ymm" #tmp "\n\t"    \
  "vpaddw %%ymm" #tmp ", %%ymm" #acc ", %%ymm" #acc "\n\t"
#define FP4LM_MADDUBS_ADD_6                                                      \
  FP4LM_MADDUBS_ADD(2, 8) FP4LM_MADDUBS_ADD(3, 9) FP4LM_MADDUBS_ADD(4, 10)      \
  FP4LM_MADDUBS_ADD(5, 11) FP4LM_MADDUBS_ADD(6, 12) FP4LM_MADDUBS_ADD(7, 13)

void DotChainsAvx2(int64_t trips) {
  FP4LM_DOT_LOOP("vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n",
                 FP4LM_MADDUBS_ADD_6 FP4LM_MADDUBS_ADD_6);
}

#undef FP4LM_MADDUBS_ADD_6
#undef FP4LM_MADDUBS_ADD
#undef FP4LM_DPBUSD_12
#undef FP4LM_DPBUSD
#undef FP4LM_DOT_LOOP

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
