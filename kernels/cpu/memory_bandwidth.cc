#include "kernels/cpu/memory_bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/core/cpu_features.h"

namespace engine::kernels {
namespace {

// The slice is read as four concurrent streams (its quarters), one cache line of each per
// step, each prefetched 2 KiB ahead into L2: the access pattern of the decode kernels
// (kernels/cpu/x86/fp4_gemm_avx512vnni.cc, f16_matmul.cc), so the bound is what they could
// reach. On Zen 4 this read ~10% more than one stream without prefetch (33-36 against 28-31
// GB/s, 2 threads, interleaved). Independent accumulators keep the adds off the critical path;
// the sum is returned so the compiler cannot drop the reads.
constexpr int64_t kStreams = 4;
constexpr int64_t kPrefetchFloats = 2048 / 4;

__attribute__((target("avx512f"))) float ReadSliceAvx512(const float* p, int64_t n) {
  const int64_t quarter = n / kStreams / 16 * 16;
  __m512 acc[kStreams];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  for (int64_t i = 0; i < quarter; i += 16) {
    for (int64_t s = 0; s < kStreams; ++s) {
      const float* line = p + s * quarter + i;
      _mm_prefetch(reinterpret_cast<const char*>(line + kPrefetchFloats), _MM_HINT_T1);
      acc[s] = _mm512_add_ps(acc[s], _mm512_load_ps(line));
    }
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes,
                  _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  float sum = 0.0f;
  for (float v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2"))) float ReadSliceAvx2(const float* p, int64_t n) {
  const int64_t quarter = n / kStreams / 16 * 16;
  __m256 acc[kStreams];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  for (int64_t i = 0; i < quarter; i += 16) {
    for (int64_t s = 0; s < kStreams; ++s) {
      const float* line = p + s * quarter + i;
      _mm_prefetch(reinterpret_cast<const char*>(line + kPrefetchFloats), _MM_HINT_T1);
      acc[s] = _mm256_add_ps(acc[s], _mm256_add_ps(_mm256_load_ps(line), _mm256_load_ps(line + 8)));
    }
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes,
                  _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
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

ReadBandwidthProbe::ReadBandwidthProbe(ThreadPool& pool, int64_t bytes)
    : pool_(pool), buffer_(nullptr, &std::free) {
  const int threads = pool.num_threads();
  // Slices of whole 256-byte chunks (four streams of 64-byte lines), 64-byte aligned.
  per_thread_bytes_ = std::max<int64_t>(bytes / threads / 256 * 256, 256);
  buffer_.reset(static_cast<float*>(
      std::aligned_alloc(64, static_cast<size_t>(per_thread_bytes_ * threads))));
  if (buffer_ == nullptr) return;
  // Each thread touches its own slice first (first-touch places pages near the thread).
  pool.ParallelFor(threads, [&](int, int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      std::memset(buffer_.get() + t * (per_thread_bytes_ / 4), 1,
                  static_cast<size_t>(per_thread_bytes_));
    }
  });
}

double ReadBandwidthProbe::Measure(int reps) {
  if (buffer_ == nullptr) return 0.0;
  const CpuFeatures f = DetectCpuFeatures();
  const int threads = pool_.num_threads();
  const int64_t floats = per_thread_bytes_ / 4;
  std::vector<float> sink(static_cast<size_t>(threads));
  double best = 0.0;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool_.ParallelFor(threads, [&](int, int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* p = buffer_.get() + t * floats;
        sink[t] = f.avx512f ? ReadSliceAvx512(p, floats)
                  : f.avx2  ? ReadSliceAvx2(p, floats)
                            : ReadSliceScalar(p, floats);
      }
    });
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(per_thread_bytes_ * threads) / seconds);
  }
  volatile float keep = 0.0f;
  for (float v : sink) keep = keep + v;
  return best;
}

double MeasureReadBandwidth(ThreadPool& pool, int64_t bytes, int reps) {
  return ReadBandwidthProbe(pool, bytes).Measure(reps);
}

}  // namespace engine::kernels
