#include "kernels/cpu/ops_cpu.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/core/cpu_features.h"
#include "kernels/cpu/gemm_f32_tiles.h"
#include "kernels/cpu/x86/silu_mul_avx512.h"
#include "kernels/cpu/x86/simd_reduce.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once they are inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace engine::kernels {
namespace {

// Micro-kernels: an MR x NR tile of y = x . w^T, accumulating NR weight rows against MR
// activation rows in vector registers (MR*NR accumulators + NR weight vectors + 1 activation
// vector stay within the 16 (AVX2) / 32 (AVX-512) registers). Selected once per call from the
// CPU features; the float results differ from the reference only by summation order.
constexpr int kTileN = 4;              // weight rows per tile
constexpr int kTileM = 4;              // activation rows per tile
// Weight rows per cache block: kRowsBlock * k floats stay in L2 while all x rows pass over them.
constexpr int64_t kRowsBlock = 64;
// From this m on gemm_internal::TiledMatMul (reading the weights in place) beats the tiles
// below, which re-read every weight from L2 per 4 activation rows and end each dot product in a
// horizontal sum. Measured on Sapphire Rapids (2048 x 2048, one thread, GOP/s tiles / tiled):
// m = 4: 38 / 28, m = 6: 45 / 44, m = 8: 48 / 57, m = 16: 50 / 110, m = 512: 53 / 144.
constexpr int64_t kTiledMinM = 8;

using simd::HorizontalSumAvx2;
using simd::ReduceAddAvx512;

template <int MR>
__attribute__((target("avx512f"))) void TileAvx512(const float* x, const float* w, int64_t k,
                                                    float (&out)[kTileM][kTileN]) {
  __m512 acc[MR][kTileN];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kTileN; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int64_t kk = 0; kk < k; kk += 16) {
    // A masked load handles the tail exactly: lanes past k read as 0.
    const __mmask16 mask = k - kk >= 16 ? __mmask16(0xffff) : __mmask16((1u << (k - kk)) - 1);
    __m512 wv[kTileN];
    for (int c = 0; c < kTileN; ++c) wv[c] = _mm512_maskz_loadu_ps(mask, w + c * k + kk);
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * k + kk);
      for (int c = 0; c < kTileN; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kTileN; ++c) out[r][c] = ReduceAddAvx512(acc[r][c]);
  }
}


template <int MR>
__attribute__((target("avx2,fma"))) void TileAvx2(const float* x, const float* w, int64_t k,
                                                  float (&out)[kTileM][kTileN]) {
  __m256 acc[MR][kTileN];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kTileN; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  int64_t kk = 0;
  for (; kk + 8 <= k; kk += 8) {
    __m256 wv[kTileN];
    for (int c = 0; c < kTileN; ++c) wv[c] = _mm256_loadu_ps(w + c * k + kk);
    for (int r = 0; r < MR; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * k + kk);
      for (int c = 0; c < kTileN; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kTileN; ++c) {
      float tail = 0.0f;
      for (int64_t t = kk; t < k; ++t) tail += x[r * k + t] * w[c * k + t];
      out[r][c] = HorizontalSumAvx2(acc[r][c]) + tail;
    }
  }
}

template <int MR>
void TileScalar(const float* x, const float* w, int64_t k, float (&out)[kTileM][kTileN]) {
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kTileN; ++c) {
      float acc = 0.0f;
      for (int64_t t = 0; t < k; ++t) acc += x[r * k + t] * w[c * k + t];
      out[r][c] = acc;
    }
  }
}

using TileFn = void (*)(const float*, const float*, int64_t, float (&)[kTileM][kTileN]);
struct TileTable {
  TileFn by_rows[kTileM + 1];  // index = MR (1..4)
  bool tiled = false;          // the CPU runs gemm_internal::TiledMatMul with tiled_isa
  gemm_internal::TileIsa tiled_isa = gemm_internal::TileIsa::kAvx2;
};

TileTable SelectTiles() {
  const CpuFeatures f = DetectCpuFeatures();
  if (f.avx512f) {
    return {{nullptr, TileAvx512<1>, TileAvx512<2>, TileAvx512<3>, TileAvx512<4>},
            true,
            gemm_internal::TileIsa::kAvx512};
  }
  if (f.avx2 && f.fma) {
    return {{nullptr, TileAvx2<1>, TileAvx2<2>, TileAvx2<3>, TileAvx2<4>},
            true,
            gemm_internal::TileIsa::kAvx2};
  }
  return {{nullptr, TileScalar<1>, TileScalar<2>, TileScalar<3>, TileScalar<4>}};
}

}  // namespace

void MatMulF32(ThreadPool& pool, const float* x, const float* w, const float* bias, float* y,
               int64_t m, int64_t n, int64_t k) {
  static const TileTable tiles = SelectTiles();  // CPUID once per process; immutable after
  if (tiles.tiled && m >= kTiledMinM && n > 0 && k > 0) {
    // Prefill: the same tiled GEMM as MatMulF16's prefill, weights read in place.
    return gemm_internal::TiledMatMul(pool, tiles.tiled_isa, x, {w}, bias, y, m, n, k);
  }
  // Decode (and CPUs without AVX2): threads split the output features (weight rows), so each
  // weight row is read by one thread only, which is what m = 1 (memory-bound) needs.
  // Full tiles of kTileN rows go through the SIMD kernels; the last n % kTileN rows use a
  // zero-padded copy so the kernels never read past w.
  const int64_t n_tiles = (n + kTileN - 1) / kTileN;
  pool.ParallelFor(n_tiles, [&](int, int64_t tile_begin, int64_t tile_end) {
    std::vector<float> padded;  // the last, partial tile's weight rows
    for (int64_t tb = tile_begin; tb < tile_end; tb += kRowsBlock / kTileN) {
      const int64_t tb_end = std::min(tile_end, tb + kRowsBlock / kTileN);
      for (int64_t i0 = 0; i0 < m; i0 += kTileM) {
        const int mr = static_cast<int>(std::min<int64_t>(kTileM, m - i0));
        for (int64_t t = tb; t < tb_end; ++t) {
          const int64_t j0 = t * kTileN;
          const int nr = static_cast<int>(std::min<int64_t>(kTileN, n - j0));
          const float* wt = w + j0 * k;
          if (nr < kTileN) {
            if (padded.empty()) {
              padded.assign(static_cast<size_t>(kTileN * k), 0.0f);
              std::copy(wt, wt + nr * k, padded.begin());
            }
            wt = padded.data();
          }
          float out[kTileM][kTileN];
          tiles.by_rows[mr](x + i0 * k, wt, k, out);
          for (int r = 0; r < mr; ++r) {
            for (int c = 0; c < nr; ++c) {
              y[(i0 + r) * n + j0 + c] = out[r][c] + (bias != nullptr ? bias[j0 + c] : 0.0f);
            }
          }
        }
      }
    }
  });
}

void RmsNorm(const float* x, const float* gamma, float* y, int64_t m, int64_t dim, float eps) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * dim;
    double sum_squares = 0.0;
    for (int64_t d = 0; d < dim; ++d) sum_squares += double{xi[d]} * xi[d];
    const float inv_rms =
        static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(dim) + eps));
    float* yi = y + i * dim;
    for (int64_t d = 0; d < dim; ++d) yi[d] = xi[d] * inv_rms * gamma[d];
  }
}

void RopeTable::Compute(const int32_t* positions, int64_t m_tokens, int64_t head_dim,
                        float theta) {
  m = m_tokens;
  half = head_dim / 2;
  cos.resize(static_cast<size_t>(m * half));
  sin.resize(static_cast<size_t>(m * half));
  for (int64_t j = 0; j < half; ++j) {
    const double freq = std::pow(static_cast<double>(theta), -2.0 * j / head_dim);
    for (int64_t i = 0; i < m; ++i) {
      const double angle = positions[i] * freq;
      cos[i * half + j] = static_cast<float>(std::cos(angle));
      sin[i * half + j] = static_cast<float>(std::sin(angle));
    }
  }
}

void Rope(float* x, const RopeTable& table, int64_t n_heads, int64_t head_dim,
          RopePairing pairing) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < table.m; ++i) {
    const float* c = table.cos.data() + i * half;
    const float* s = table.sin.data() + i * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = x + (i * n_heads + h) * head_dim;
      for (int64_t j = 0; j < half; ++j) {
        const int64_t ia = pairing == RopePairing::kInterleaved ? 2 * j : j;
        const int64_t ib = pairing == RopePairing::kInterleaved ? 2 * j + 1 : j + half;
        const float a = head[ia], b = head[ib];
        head[ia] = a * c[j] - b * s[j];
        head[ib] = a * s[j] + b * c[j];
      }
    }
  }
}

void SiluMul(const float* gate, const float* up, float* out, int64_t n) {
  // Decided once: CPUID traps in a VM, and this runs for every row of every layer.
  static const bool avx512 = silu_internal::kHaveSiluMulAvx512 && DetectCpuFeatures().avx512f &&
                             silu_internal::SiluMulAvx512AgreesWithScalar();
  if (avx512) {
    silu_internal::SiluMulAvx512(gate, up, out, n);
  } else {
    silu_internal::SiluMulScalar(gate, up, out, n);
  }
}

}  // namespace engine::kernels
