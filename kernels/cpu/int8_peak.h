// Measures the machine's int8 dot-product peak: the rate of the vector instruction sequence the
// W4A4 kernels multiply-accumulate with on this CPU, on every pool thread at once, with enough
// independent accumulators that throughput, not latency, is the limit. `fp4lm bench` puts each
// W4A4 prefill row against it, as it puts decode rows against the memory read bandwidth.
#ifndef FP4LM_KERNELS_CPU_INT8_PEAK_H_
#define FP4LM_KERNELS_CPU_INT8_PEAK_H_

#include "kernels/cpu/thread_pool.h"

namespace engine::kernels {

struct Int8Peak {
  // int8 operations per second, two per multiply-add (the convention of "2 m n k" GOP/s); 0 on
  // a CPU without AVX2, whose scalar path has no int8 vector peak to speak of.
  double ops_per_second = 0;
  // The sequence timed: "avx512vnni vpdpbusd zmm", "avxvnni vpdpbusd ymm" or
  // "avx2 vpmaddubsw + vpaddw ymm" (an int16 pair sum, then one add to accumulate it: the
  // cheapest exact accumulation without VNNI, and the one the AVX2 kernel runs). AMX tiles,
  // which the prefill GEMM uses where present, are faster than any of these.
  const char* instruction = "none";
};

// The best of `reps` timed passes of every thread of `pool`.
Int8Peak MeasureInt8DotPeak(ThreadPool& pool, int reps);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_INT8_PEAK_H_
