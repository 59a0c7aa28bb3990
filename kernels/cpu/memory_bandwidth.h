// Measures the machine's main-memory read bandwidth the way a decode step reads weights: the
// pool's threads each stream their own contiguous slice of a buffer far larger than the caches,
// in four concurrent streams with software prefetch, as the decode kernels read four tiles.
// `fp4lm bench` divides it by the bytes a token reads to get the decode speed bound.
#ifndef FP4LM_KERNELS_CPU_MEMORY_BANDWIDTH_H_
#define FP4LM_KERNELS_CPU_MEMORY_BANDWIDTH_H_

#include <cstdint>
#include <memory>

#include "kernels/cpu/thread_pool.h"

namespace engine::kernels {

// A buffer of `bytes`, allocated and touched once (page faults are not timed), that Measure
// reads as often as asked: a caller that probes many times pays the allocation once.
class ReadBandwidthProbe {
 public:
  ReadBandwidthProbe(ThreadPool& pool, int64_t bytes);
  // Bytes per second, the best of `reps` passes with the pool's threads; 0 if the buffer could
  // not be allocated.
  double Measure(int reps);

 private:
  ThreadPool& pool_;
  int64_t per_thread_bytes_ = 0;
  std::unique_ptr<float, void (*)(void*)> buffer_;
};

// ReadBandwidthProbe(pool, bytes).Measure(reps).
double MeasureReadBandwidth(ThreadPool& pool, int64_t bytes, int reps);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_MEMORY_BANDWIDTH_H_
