// Measures the machine's main-memory read bandwidth the way a decode step reads weights: the
// pool's threads each stream their own contiguous slice of a buffer far larger than the caches.
// `fp4lm bench` divides it by the bytes a token reads to get the decode speed bound.
#ifndef FP4LM_KERNELS_CPU_MEMORY_BANDWIDTH_H_
#define FP4LM_KERNELS_CPU_MEMORY_BANDWIDTH_H_

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace engine::kernels {

// Bytes per second, the best of `reps` passes over a buffer of `bytes` (allocated and touched
// first, so page faults are not timed).
double MeasureReadBandwidth(ThreadPool& pool, int64_t bytes, int reps);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_MEMORY_BANDWIDTH_H_
