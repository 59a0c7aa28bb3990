// The tiled FP32 GEMM (gemm_f32_tiles.h): activations transposed once per call, blocks of weight
// rows loaded into per-thread FP32 scratch (or FP32 rows read in place), and outer-product FMA
// micro-kernels over them.
#include "kernels/cpu/gemm_f32_tiles.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "kernels/core/status_macros.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once they are inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define FP4LM_TILES_AVX512 __attribute__((target("avx512f,fma")))
#define FP4LM_TILES_AVX2 __attribute__((target("avx2,fma")))

namespace engine::kernels::gemm_internal {
namespace {

// Outer-product micro-kernel with activation rows in the vector lanes: mr activation rows (two
// registers) x nr weight rows, one broadcast weight per FMA pair, no horizontal sums. Operands:
//   xt: the activations transposed per chunk of mr rows, [chunk][k_pad][mr], built once per
//       call (an O(m k) pass against the O(m n k) product);
//   weights, in one of two layouts:
//   - packed (loaded by WeightRows::load): a block of weight rows as FP32, [k_len / kKc][rows]
//     [kKc], per thread, so the nr rows of a micro-kernel are kKc floats apart: compile-time
//     displacements off one base register for all broadcasts;
//   - in place (FP32 weights): the rows of w themselves, k floats apart. No copy at all, which
//     is what small m needs (at m = 16 copying the weights into scratch halves the throughput),
//     and as fast as packed at m = 512 on Sapphire Rapids.
// A block of block_rows x kKco weights (~1 MB) stays in L2 while every activation chunk passes
// over it; k beyond kKco is summed block by block in y.
constexpr int64_t kKc = 256;
constexpr int64_t kKco = 2048;

// out[j * mr + i] = sum_{t < k_len} xt[t * mr + i] * weight(j, t) for i < mr (V = 2) or
// i < mr / 2 (V = 1; xt keeps its mr-float stride), where weight(j, t) is
//   packed:   wb[(t / kKc) * ld + j * kKc + t % kKc] (ld = the block's kb stride; the packed
//             rows and xt are zero-padded to a multiple of kKc, which the kernel runs over),
//   in place: wb[j * ld + t] (ld = k, the row stride of w).
using KernelFn = void (*)(const float* xt, const float* wb, int64_t ld, int64_t k_len, float* out);

struct TileConfig {
  int nr;                 // weight rows per micro-kernel
  int mr;                 // activation rows per micro-kernel (vector lanes x 2)
  int64_t block_rows;     // weight rows per L2 block (a multiple of nr)
  KernelFn kernel[2][2];  // [in place][V - 1]
};

constexpr int kAvx512Nr = 12, kAvx512Mr = 32;  // 24 accumulators + 2 activations + 1 broadcast
constexpr int kAvx2Nr = 6, kAvx2Mr = 16;       // 12 accumulators + 2 activations + 1 broadcast

// One t step of the micro-kernel: the weights of its rows at wk + j * row_stride (a constant
// for the packed layout once inlined).
template <int V>
FP4LM_TILES_AVX512 inline __attribute__((always_inline)) void StepAvx512(
    const float* xk, const float* wk, int64_t row_stride, __m512 (&acc)[kAvx512Nr][V]) {
  __m512 xv[V];
  for (int v = 0; v < V; ++v) xv[v] = _mm512_load_ps(xk + 16 * v);
  for (int j = 0; j < kAvx512Nr; ++j) {
    const __m512 wj = _mm512_set1_ps(wk[j * row_stride]);
    for (int v = 0; v < V; ++v) acc[j][v] = _mm512_fmadd_ps(wj, xv[v], acc[j][v]);
  }
}

template <int V, bool kInPlace>
FP4LM_TILES_AVX512 void KernelAvx512(const float* xt, const float* wb, int64_t ld, int64_t k_len,
                                     float* out) {
  constexpr int NR = kAvx512Nr, MR = kAvx512Mr;
  __m512 acc[NR][V];
  for (int j = 0; j < NR; ++j) {
    for (int v = 0; v < V; ++v) acc[j][v] = _mm512_setzero_ps();
  }
  if constexpr (kInPlace) {
    for (int64_t t = 0; t < k_len; ++t) StepAvx512<V>(xt + t * MR, wb + t, ld, acc);
  } else {
    const int64_t n_kb = (k_len + kKc - 1) / kKc;
    for (int64_t kb = 0; kb < n_kb; ++kb) {
      for (int64_t t = 0; t < kKc; ++t) {
        StepAvx512<V>(xt + (kb * kKc + t) * MR, wb + kb * ld + t, kKc, acc);
      }
    }
  }
  for (int j = 0; j < NR; ++j) {
    for (int v = 0; v < V; ++v) _mm512_storeu_ps(out + j * MR + 16 * v, acc[j][v]);
  }
}

// One t step of the micro-kernel: the weights of its rows at wk + j * row_stride (a constant
// for the packed layout once inlined).
template <int V>
FP4LM_TILES_AVX2 inline __attribute__((always_inline)) void StepAvx2(const float* xk,
                                                                     const float* wk,
                                                                     int64_t row_stride,
                                                                     __m256 (&acc)[kAvx2Nr][V]) {
  __m256 xv[V];
  for (int v = 0; v < V; ++v) xv[v] = _mm256_load_ps(xk + 8 * v);
  for (int j = 0; j < kAvx2Nr; ++j) {
    const __m256 wj = _mm256_broadcast_ss(wk + j * row_stride);
    for (int v = 0; v < V; ++v) acc[j][v] = _mm256_fmadd_ps(wj, xv[v], acc[j][v]);
  }
}

template <int V, bool kInPlace>
FP4LM_TILES_AVX2 void KernelAvx2(const float* xt, const float* wb, int64_t ld, int64_t k_len,
                                 float* out) {
  constexpr int NR = kAvx2Nr, MR = kAvx2Mr;
  __m256 acc[NR][V];
  for (int j = 0; j < NR; ++j) {
    for (int v = 0; v < V; ++v) acc[j][v] = _mm256_setzero_ps();
  }
  if constexpr (kInPlace) {
    for (int64_t t = 0; t < k_len; ++t) StepAvx2<V>(xt + t * MR, wb + t, ld, acc);
  } else {
    const int64_t n_kb = (k_len + kKc - 1) / kKc;
    for (int64_t kb = 0; kb < n_kb; ++kb) {
      for (int64_t t = 0; t < kKc; ++t) {
        StepAvx2<V>(xt + (kb * kKc + t) * MR, wb + kb * ld + t, kKc, acc);
      }
    }
  }
  for (int j = 0; j < NR; ++j) {
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + j * MR + 8 * v, acc[j][v]);
  }
}

constexpr TileConfig kConfigAvx512 = {kAvx512Nr,
                                      kAvx512Mr,
                                      10 * kAvx512Nr,
                                      {{KernelAvx512<1, false>, KernelAvx512<2, false>},
                                       {KernelAvx512<1, true>, KernelAvx512<2, true>}}};
constexpr TileConfig kConfigAvx2 = {
    kAvx2Nr,
    kAvx2Mr,
    8 * kAvx2Nr,
    {{KernelAvx2<1, false>, KernelAvx2<2, false>}, {KernelAvx2<1, true>, KernelAvx2<2, true>}}};

// The packed layout's loader for FP32 weights that cannot be read in place (n < nr).
void CopyF32(const void* data, int64_t index, int64_t count, float* dst) {
  std::memcpy(dst, static_cast<const float*>(data) + index, static_cast<size_t>(count) * 4);
}

// 64-byte aligned, uninitialized float storage.
struct AlignedFloats {
  std::unique_ptr<float[]> storage;
  float* data = nullptr;
  explicit AlignedFloats(int64_t count)
      : storage(std::make_unique_for_overwrite<float[]>(static_cast<size_t>(count) + 16)) {
    const auto address = reinterpret_cast<uintptr_t>(storage.get());
    data = storage.get() + ((64 - address % 64) % 64) / sizeof(float);
  }
};

}  // namespace

void TiledMatMul(ThreadPool& pool, TileIsa isa, const float* x, const WeightRows& w_in,
                 const float* bias, float* y, int64_t m, int64_t n, int64_t k) {
  ENGINE_CHECK(m > 0 && n > 0 && k > 0);
  const TileConfig& config = isa == TileIsa::kAvx512 ? kConfigAvx512 : kConfigAvx2;
  const int64_t mr = config.mr, nr = config.nr;
  // In place needs nr real rows to point a micro-kernel at; fewer than that are copied.
  const WeightRows w = w_in.load == nullptr && n < nr ? WeightRows{w_in.data, CopyF32} : w_in;
  const bool in_place = w.load == nullptr;
  const float* w_f32 = static_cast<const float*>(w.data);
  const int64_t k_pad = (k + kKc - 1) / kKc * kKc;
  const int64_t chunks = (m + mr - 1) / mr;
  AlignedFloats xt(chunks * k_pad * mr);
  // Zero rows past m and columns past k: they meet zero-padded weights or are never stored.
  pool.ParallelFor(chunks, [&](int, int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      float* dst = xt.data + c * k_pad * mr;
      const int64_t rows = std::min(mr, m - c * mr);
      for (int64_t t = 0; t < k; ++t) {
        const float* src = x + c * mr * k + t;
        for (int64_t i = 0; i < rows; ++i) dst[t * mr + i] = src[i * k];
        for (int64_t i = rows; i < mr; ++i) dst[t * mr + i] = 0.0f;
      }
      std::fill(dst + k * mr, dst + k_pad * mr, 0.0f);
    }
  });

  // Threads split the weight rows in units of nr (only the very last unit can be partial).
  const int64_t units = (n + nr - 1) / nr;
  pool.ParallelFor(units, [&](int, int64_t unit_begin, int64_t unit_end) {
    // Per-thread, reused across calls (and by the F32 and F16 callers alike): the pool's threads
    // live as long as the pool, and loading into fresh pages every call would pay the page
    // faults each time. 16 spare floats to align it to 64 bytes.
    thread_local std::vector<float> scratch;
    float* block = nullptr;
    if (!in_place) {
      scratch.resize(static_cast<size_t>(config.block_rows * kKco + 16));
      const auto address = reinterpret_cast<uintptr_t>(scratch.data());
      block = scratch.data() + ((64 - address % 64) % 64) / sizeof(float);
    }
    alignas(64) float out[kAvx512Nr * kAvx512Mr];
    for (int64_t k0 = 0; k0 < k; k0 += kKco) {
      const int64_t k_len = std::min(kKco, k - k0);
      const int64_t n_kb = (k_len + kKc - 1) / kKc;
      const bool first = k0 == 0, last = k0 + k_len == k;
      for (int64_t j_begin = unit_begin * nr; j_begin < unit_end * nr;
           j_begin += config.block_rows) {
        const int64_t rows = std::min(config.block_rows, unit_end * nr - j_begin);
        const int64_t kb_stride = rows * kKc;
        for (int64_t kb = 0; kb < n_kb && !in_place; ++kb) {
          const int64_t t0 = k0 + kb * kKc;
          const int64_t count = std::min(kKc, k - t0);
          for (int64_t r = 0; r < rows; ++r) {
            float* dst = block + kb * kb_stride + r * kKc;
            const int64_t j = j_begin + r;
            const int64_t valid = j < n ? count : 0;
            if (valid > 0) w.load(w.data, j * k + t0, valid, dst);
            std::fill(dst + valid, dst + kKc, 0.0f);
          }
        }
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t i0 = c * mr;
          const int64_t m_valid = std::min(mr, m - i0);
          const float* xc = xt.data + (c * k_pad + k0) * mr;
          const KernelFn kernel = config.kernel[in_place][m_valid <= mr / 2 ? 0 : 1];
          for (int64_t r0 = 0; r0 < rows; r0 += nr) {
            // j0: the first output column of this micro-kernel. In place, a partial last unit
            // is moved back to end at row n - 1 (n >= nr), and only its new columns are stored:
            // the overlap belongs to the previous unit, possibly another thread's.
            int64_t j0 = j_begin + r0, skip = 0;
            if (in_place) {
              skip = std::max<int64_t>(0, j0 + nr - n);
              j0 -= skip;
              kernel(xc, w_f32 + j0 * k + k0, k, k_len, out);
            } else {
              kernel(xc, block + r0 * kKc, kb_stride, k_len, out);
            }
            const int64_t j_end = std::min(j0 + nr, n);
            for (int64_t i = 0; i < m_valid; ++i) {
              float* yi = y + (i0 + i) * n;
              for (int64_t j = j0 + skip; j < j_end; ++j) {
                float v = out[(j - j0) * mr + i];
                if (!first) v = yi[j] + v;
                if (last && bias != nullptr) v += bias[j];
                yi[j] = v;
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace engine::kernels::gemm_internal
