#include "kernels/cpu/ops_cpu.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/core/cpu_features.h"
#include "kernels/cpu/gemm_f32_tiles.h"

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

__attribute__((target("avx2,fma"))) inline float HorizontalSumAvx2(__m256 v) {
  const __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 sum2 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
  return _mm_cvtss_f32(_mm_add_ss(sum2, _mm_movehdup_ps(sum2)));
}

// GCC 12's _mm512_reduce_add_ps and _mm512_castps512_ps256 trip -Wuninitialized inside its own
// header (an undefined pass-through operand); zero-masked extracts avoid it.
__attribute__((target("avx512f"))) inline float ReduceAddAvx512(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 0));
  const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 1));
  return HorizontalSumAvx2(_mm256_add_ps(lo, hi));
}

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
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

namespace {

// One task of attention: the n_q query heads of one token that share a kv head (all or part of
// a GQA group), each scored against the same n_keys cached keys, softmaxed, and used to weight
// the values. Keys and values of one kv head are contiguous [n_keys, head_dim] runs
// (engine/kv_cache.h); the n_q query (and output) rows are contiguous too.
struct AttentionGroupArgs {
  const float* q;   // [n_q, head_dim]
  const float* k;   // [n_keys, head_dim]
  const float* v;   // [n_keys, head_dim]
  int64_t n_q;
  int64_t n_keys;
  int64_t head_dim;
  float scale;      // 1 / sqrt(head_dim)
  float* scores;    // [n_q, RoundUp16(n_keys)] scratch
  float* key_pad;   // [16, head_dim] scratch for the last, partial block of keys
  float* out;       // [n_q, head_dim]
};

inline int64_t RoundUp16(int64_t n) { return (n + 15) / 16 * 16; }

// exp(x) for x <= 88 in AVX-512: Cephes' expf (range reduction by ln 2 split in two constants,
// degree-6 polynomial, ~1 ulp), scaled by 2^n with vscalefps, which also flushes very negative
// inputs to 0 as softmax needs.
__attribute__((target("avx512f"))) inline __m512 ExpAvx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-103.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __mmask16 TailMask(int64_t remaining) {
  return remaining >= 16 ? __mmask16(0xffff) : __mmask16((1u << remaining) - 1);
}

// Sums each of 16 vectors into one lane of the result: lane j = sum of v[j]'s 16 lanes. Four
// rounds of shuffle + add halve the vector count each time (30 shuffles, 15 adds), instead of
// the 16 separate horizontal reductions (4 dependent shuffle/add steps each) it replaces.
__attribute__((target("avx512f"))) inline __m512 Transpose16AndAdd(const __m512 (&v)[16]) {
  // Round 1: per 128-bit lane, [x0+x2, y0+y2, x1+x3, y1+y3] for the pair (x, y) = (v[2i], v[2i+1]).
  __m512 b[8];
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]),
                         _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  }
  // Round 2: per 128-bit lane, the lane's partial sums of v[4i], ..., v[4i+3] in order.
  __m512 c[4];
  for (int i = 0; i < 4; ++i) {
    const __m512d lo = _mm512_castps_pd(b[2 * i]), hi = _mm512_castps_pd(b[2 * i + 1]);
    c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi)));
  }
  // Rounds 3 and 4: add the four 128-bit lanes of c[i] and move the total to lane i.
  const __m512 e0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 e1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(e0, e1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(e0, e1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// Dot products of one query with 16 consecutive keys (rows head_dim apart): 16 independent
// accumulators over head_dim keep the FMA pipes busy, and one transpose-add ends all of them.
__attribute__((target("avx512f"))) inline __m512 Dot16KeysAvx512(const float* q, const float* k,
                                                                  int64_t hd) {
  __m512 acc[16];
  for (__m512& a : acc) a = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= hd; d += 16) {
    const __m512 qv = _mm512_loadu_ps(q + d);
    const float* kd = k + d;
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(kd + j * hd), acc[j]);
  }
  if (d < hd) {
    // Lanes past head_dim read as 0 in the query, so the keys' masked lanes add nothing.
    const __mmask16 m = TailMask(hd - d);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + d);
    const float* kd = k + d;
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      acc[j] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(m, kd + j * hd), acc[j]);
    }
  }
  return Transpose16AndAdd(acc);
}

__attribute__((target("avx512f"))) inline float ReduceMaxAvx512(__m512 v) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 max8 = _mm256_max_ps(_mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 0)),
                                    _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 1)));
  __m128 max4 = _mm_max_ps(_mm256_castps256_ps128(max8), _mm256_extractf128_ps(max8, 1));
  max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
  max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
  return _mm_cvtss_f32(max4);
}

// Softmax numerators of one row of scores in place (max tracked by the caller); returns
// 1 / their sum.
__attribute__((target("avx512f"))) float ExpScoresAvx512(float* scores, float max_score,
                                                          int64_t n_keys) {
  const __m512 max = _mm512_set1_ps(max_score);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t t = 0; t < n_keys; t += 16) {
    const __mmask16 m = TailMask(n_keys - t);
    const __m512 e = ExpAvx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + t), max));
    _mm512_mask_storeu_ps(scores + t, m, e);
    vsum = _mm512_mask_add_ps(vsum, m, vsum, e);
  }
  return 1.0f / ReduceAddAvx512(vsum);
}

// acc[h] += p[h * stride] * vt for NH heads and up to 64 floats of one value row.
template <int NH>
__attribute__((target("avx512f"), always_inline)) inline void ValueStepAvx512(
    const float* p, int64_t stride, const float* vt, const __mmask16 (&mask)[4],
    __m512 (&acc)[NH][4]) {
  __m512 vv[4];
  for (int c = 0; c < 4; ++c) vv[c] = _mm512_maskz_loadu_ps(mask[c], vt + 16 * c);
  for (int h = 0; h < NH; ++h) {
    const __m512 ph = _mm512_set1_ps(p[h * stride]);
    for (int c = 0; c < 4; ++c) acc[h][c] = _mm512_fmadd_ps(ph, vv[c], acc[h][c]);
  }
}

// out[h] = inv_sum[h] * sum_t p[h][t] * v[t] for NH query heads (rows of p `stride` apart), in
// head_dim chunks of 64. Each value vector loaded serves all NH heads, and KU keys in flight
// give NH * KU * 4 independent accumulators, enough to cover the FMA latency even for one head.
template <int NH>
__attribute__((target("avx512f"))) void WeightedValuesAvx512(const float* p, int64_t stride,
                                                              const float* v, int64_t n_keys,
                                                              int64_t hd, const float* inv_sum,
                                                              float* out) {
  constexpr int kKU = NH == 1 ? 4 : NH == 2 ? 2 : 1;
  for (int64_t d0 = 0; d0 < hd; d0 += 64) {
    // Chunks past head_dim get an empty mask: their loads read nothing and their stores write
    // nothing, which keeps the inner loop free of branches.
    __mmask16 mask[4];
    for (int c = 0; c < 4; ++c) mask[c] = hd - d0 - 16 * c > 0 ? TailMask(hd - d0 - 16 * c) : 0;
    __m512 acc[kKU][NH][4];
    for (int u = 0; u < kKU; ++u) {
      for (int h = 0; h < NH; ++h) {
        for (int c = 0; c < 4; ++c) acc[u][h][c] = _mm512_setzero_ps();
      }
    }
    int64_t t = 0;
    for (; t + kKU <= n_keys; t += kKU) {
      for (int u = 0; u < kKU; ++u) {
        ValueStepAvx512<NH>(p + t + u, stride, v + (t + u) * hd + d0, mask, acc[u]);
      }
    }
    for (; t < n_keys; ++t) ValueStepAvx512<NH>(p + t, stride, v + t * hd + d0, mask, acc[0]);
    for (int h = 0; h < NH; ++h) {
      for (int c = 0; c < 4; ++c) {
        __m512 sum = acc[0][h][c];
        for (int u = 1; u < kKU; ++u) sum = _mm512_add_ps(sum, acc[u][h][c]);
        _mm512_mask_storeu_ps(out + h * hd + d0 + 16 * c, mask[c],
                              _mm512_mul_ps(sum, _mm512_set1_ps(inv_sum[h])));
      }
    }
  }
}

// At most this many query heads per task: their running maxima stay in registers.
constexpr int64_t kMaxGroupHeads = 16;

__attribute__((target("avx512f"))) void AttentionGroupAvx512(const AttentionGroupArgs& a) {
  const int64_t hd = a.head_dim, stride = RoundUp16(a.n_keys);
  const __m512 scale = _mm512_set1_ps(a.scale);
  __m512 vmax[kMaxGroupHeads];
  for (int64_t h = 0; h < a.n_q; ++h) vmax[h] = _mm512_set1_ps(-INFINITY);
  // Scores, 16 keys at a time; every query head of the group reads the block while it is in L1.
  for (int64_t t = 0; t < a.n_keys; t += 16) {
    const int64_t rem = a.n_keys - t;
    const float* kb = a.k + t * hd;
    if (rem < 16) {
      // The cache may end before 16 rows, so the last block runs on a zero-padded copy.
      std::copy(kb, kb + rem * hd, a.key_pad);
      std::fill(a.key_pad + rem * hd, a.key_pad + 16 * hd, 0.0f);
      kb = a.key_pad;
    }
    const __mmask16 m = TailMask(rem);
    for (int64_t h = 0; h < a.n_q; ++h) {
      const __m512 s = _mm512_mul_ps(Dot16KeysAvx512(a.q + h * hd, kb, hd), scale);
      _mm512_mask_storeu_ps(a.scores + h * stride + t, m, s);
      vmax[h] = _mm512_mask_max_ps(vmax[h], m, vmax[h], s);
    }
  }
  float inv_sum[kMaxGroupHeads];
  for (int64_t h = 0; h < a.n_q; ++h) {
    inv_sum[h] = ExpScoresAvx512(a.scores + h * stride, ReduceMaxAvx512(vmax[h]), a.n_keys);
  }
  for (int64_t h = 0; h < a.n_q; h += 4) {
    const float* p = a.scores + h * stride;
    float* out = a.out + h * hd;
    switch (std::min<int64_t>(4, a.n_q - h)) {
      case 1: WeightedValuesAvx512<1>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
      case 2: WeightedValuesAvx512<2>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
      case 3: WeightedValuesAvx512<3>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
      default: WeightedValuesAvx512<4>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
    }
  }
}

// Portable version (and the AVX2 machines' path, compiled for AVX2 so its non-reduction loops
// vectorize), one query head at a time.
template <bool kAvx2>
void AttentionGroupGenericImpl(const AttentionGroupArgs& a) {
  const int64_t hd = a.head_dim;
  for (int64_t h = 0; h < a.n_q; ++h) {
    const float* q = a.q + h * hd;
    float* out = a.out + h * hd;
    float max_score = -INFINITY;
    for (int64_t t = 0; t < a.n_keys; ++t) {
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q[d] * a.k[t * hd + d];
      a.scores[t] = dot * a.scale;
      max_score = std::max(max_score, a.scores[t]);
    }
    float sum = 0.0f;
    for (int64_t t = 0; t < a.n_keys; ++t) {
      a.scores[t] = std::exp(a.scores[t] - max_score);
      sum += a.scores[t];
    }
    std::fill(out, out + hd, 0.0f);
    for (int64_t t = 0; t < a.n_keys; ++t) {
      const float p = a.scores[t];
      for (int64_t d = 0; d < hd; ++d) out[d] += p * a.v[t * hd + d];
    }
    const float inv_sum = 1.0f / sum;
    for (int64_t d = 0; d < hd; ++d) out[d] *= inv_sum;
  }
}
__attribute__((target("avx2,fma"))) void AttentionGroupAvx2(const AttentionGroupArgs& a) {
  AttentionGroupGenericImpl<true>(a);
}
void AttentionGroupGeneric(const AttentionGroupArgs& a) { AttentionGroupGenericImpl<false>(a); }

using AttentionGroupFn = void (*)(const AttentionGroupArgs&);
AttentionGroupFn SelectAttentionGroup() {
  const CpuFeatures f = DetectCpuFeatures();
  return f.avx512f                ? AttentionGroupAvx512
         : (f.avx2 && f.fma)      ? AttentionGroupAvx2
                                  : AttentionGroupGeneric;
}

// Query heads per task: the largest divisor of the GQA group (at most kMaxGroupHeads) that still
// leaves every thread several tasks, so decode (m = 1) keeps its parallelism.
int64_t HeadsPerTask(const AttentionShape& s, int threads) {
  const int64_t group = s.n_heads / s.n_kv_heads;
  for (int64_t g = std::min(group, kMaxGroupHeads); g > 1; --g) {
    if (group % g == 0 && s.m * s.n_heads / g >= 4 * threads) return g;
  }
  return 1;
}

}  // namespace

void Attention(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
               const int32_t* positions, float* out, const AttentionShape& s) {
  static const AttentionGroupFn attention_group = SelectAttentionGroup();
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t heads_per_task = HeadsPerTask(s, pool.num_threads());
  const int64_t tasks_per_token = s.n_heads / heads_per_task;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t max_keys = *std::max_element(positions, positions + s.m) + 1;
  const int64_t scratch = heads_per_task * RoundUp16(max_keys) + 16 * s.head_dim;
  std::vector<float> scratch_all(static_cast<size_t>(pool.num_threads() * scratch));
  pool.ParallelFor(s.m * tasks_per_token, [&](int thread, int64_t begin, int64_t end) {
    float* scores = scratch_all.data() + thread * scratch;
    for (int64_t task = begin; task < end; ++task) {
      // Causal rows cost in proportion to their position and ParallelFor hands out contiguous
      // ranges, so tokens go in the order 0, m-1, 1, m-2, ...: every range gets a fair share.
      const int64_t j = task / tasks_per_token;
      const int64_t i = j % 2 == 0 ? j / 2 : s.m - 1 - j / 2;
      const int64_t h = task % tasks_per_token * heads_per_task;
      const int64_t kv_offset = (h / group) * s.capacity * s.head_dim;
      attention_group({.q = q + (i * s.n_heads + h) * s.head_dim,
                       .k = k_cache + kv_offset,
                       .v = v_cache + kv_offset,
                       .n_q = heads_per_task,
                       .n_keys = positions[i] + 1,
                       .head_dim = s.head_dim,
                       .scale = scale,
                       .scores = scores,
                       .key_pad = scores + heads_per_task * RoundUp16(max_keys),
                       .out = out + (i * s.n_heads + h) * s.head_dim});
    }
  });
}

}  // namespace engine::kernels
