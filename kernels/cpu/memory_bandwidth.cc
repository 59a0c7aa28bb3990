#include "kernels/cpu/memory_bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/core/cpu_features.h"

namespace engine::kernels {
namespace {

// Sums the slice with independent vector accumulators (the loads, not the adds, must be the
// limit), returning the sum so the compiler cannot drop the reads.
__attribute__((target("avx512f"))) float ReadSliceAvx512(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2"))) float ReadSliceAvx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum;
}

float ReadSliceScalar(const float* p, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; i += 16) sum += p[i];  // one load per cache line
  return sum;
}

}  // namespace

double MeasureReadBandwidth(ThreadPool& pool, int64_t bytes, int reps) {
  const CpuFeatures f = DetectCpuFeatures();
  const int threads = pool.num_threads();
  // Slices of whole 256-byte chunks, 64-byte aligned.
  const int64_t per_thread = std::max<int64_t>(bytes / threads / 256 * 256, 256);
  const int64_t floats = per_thread / 4 * threads;
  std::unique_ptr<float, decltype(&std::free)> buffer(
      static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(floats) * 4)), &std::free);
  if (buffer == nullptr) return 0.0;
  // Each thread touches its own slice first (first-touch places pages near the thread).
  pool.ParallelFor(threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      std::memset(buffer.get() + t * (per_thread / 4), 1, static_cast<size_t>(per_thread));
    }
  });
  std::vector<float> sink(static_cast<size_t>(threads));
  double best = 0.0;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.ParallelFor(threads, [&](int, int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* p = buffer.get() + t * (per_thread / 4);
        sink[t] = f.avx512f ? ReadSliceAvx512(p, per_thread / 4)
                  : f.avx2  ? ReadSliceAvx2(p, per_thread / 4)
                            : ReadSliceScalar(p, per_thread / 4);
      }
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(floats) * 4 / seconds);
  }
  volatile float keep = 0.0f;
  for (float v : sink) keep = keep + v;
  return best;
}

}  // namespace engine::kernels
