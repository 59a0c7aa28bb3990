// Attention (AttentionRef in kernels/ref/ops_ref.h) on the CPU: one task per token and group
// of query heads that share a kv head, with AVX-512 and AVX2 + FMA kernels chosen at run time and
// a portable one. Scores are computed in key blocks against every query head of the group while
// the block is in L1, then softmaxed and used to weight the values.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/core/cpu_features.h"
#include "kernels/core/status_macros.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/x86/simd_reduce.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once they are inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace engine::kernels {

using simd::ReduceAddAvx512;
using simd::ReduceMaxAvx512;

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

// Cephes' expf: n = round(x / ln 2), r = x - n ln 2 with ln 2 split into a part exact in float
// and a correction, then 1 + r + r^2 * P(r) with P's coefficients highest first.
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// exp(x) for x <= 88 in AVX-512: Cephes' expf (range reduction by ln 2 split in two constants,
// degree-6 polynomial, ~1 ulp), scaled by 2^n with vscalefps, which also flushes very negative
// inputs to 0 as softmax needs.
__attribute__((target("avx512f"))) inline __m512 ExpAvx512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-103.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
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

// ---- AVX2 + FMA: the same structure in 8-float registers, 8 keys per score block ----------

#define FP4LM_ATTENTION_AVX2 __attribute__((target("avx2,fma")))

// Lane mask for _mm256_maskload/maskstore: lanes < remaining (clamped to [0, 8]) are on.
FP4LM_ATTENTION_AVX2 inline __m256i TailMask8(int64_t remaining) {
  const auto on = static_cast<int32_t>(std::clamp<int64_t>(remaining, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(on), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// ExpAvx512's polynomial for x <= 0 (scores minus their maximum). AVX2 has no vscalefps: 2^n
// is built in the exponent field, which needs n >= -126, so inputs below -87 (whose exp is
// below FLT_MIN) give 0, as vscalefps' flush does; NaN gives 0 as there.
FP4LM_ATTENTION_AVX2 inline __m256 ExpAvx2(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i two_n = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(two_n)), keep);
}

// Lane j = the sum of v[j]'s 8 lanes: two rounds of hadd pair up the vectors within each
// 128-bit half, and one cross-half add finishes all eight.
FP4LM_ATTENTION_AVX2 inline __m256 Transpose8AndAdd(const __m256 (&v)[8]) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

// Dot products of one query with 8 consecutive keys (rows head_dim apart), as Dot16KeysAvx512.
FP4LM_ATTENTION_AVX2 inline __m256 Dot8KeysAvx2(const float* q, const float* k, int64_t hd) {
  __m256 acc[8];
  for (__m256& a : acc) a = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= hd; d += 8) {
    const __m256 qv = _mm256_loadu_ps(q + d);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + j * hd + d), acc[j]);
    }
  }
  if (d < hd) {
    const __m256i m = TailMask8(hd - d);
    const __m256 qv = _mm256_maskload_ps(q + d, m);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      acc[j] = _mm256_fmadd_ps(qv, _mm256_maskload_ps(k + j * hd + d, m), acc[j]);
    }
  }
  return Transpose8AndAdd(acc);
}

FP4LM_ATTENTION_AVX2 float ExpScoresAvx2(float* scores, float max_score, int64_t n_keys) {
  const __m256 max = _mm256_set1_ps(max_score);
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t t = 0; t < n_keys; t += 8) {
    const __m256i m = TailMask8(n_keys - t);
    const __m256 e = ExpAvx2(_mm256_sub_ps(_mm256_maskload_ps(scores + t, m), max));
    _mm256_maskstore_ps(scores + t, m, e);
    vsum = _mm256_add_ps(vsum, _mm256_and_ps(e, _mm256_castsi256_ps(m)));
  }
  return 1.0f / simd::HorizontalSumAvx2(vsum);
}

// WeightedValuesAvx512 in head_dim chunks of 16 (two registers): NH * KU * 2 accumulators, the
// two value registers and a broadcast fit the 16 ymm registers.
template <int NH>
FP4LM_ATTENTION_AVX2 void WeightedValuesAvx2(const float* p, int64_t stride, const float* v,
                                             int64_t n_keys, int64_t hd, const float* inv_sum,
                                             float* out) {
  constexpr int kKU = NH == 1 ? 4 : NH == 2 ? 2 : 1;
  for (int64_t d0 = 0; d0 < hd; d0 += 16) {
    const __m256i mask[2] = {TailMask8(hd - d0), TailMask8(hd - d0 - 8)};
    __m256 acc[kKU][NH][2];
    for (int u = 0; u < kKU; ++u) {
      for (int h = 0; h < NH; ++h) acc[u][h][0] = acc[u][h][1] = _mm256_setzero_ps();
    }
    auto step = [&](int64_t t, __m256 (&a)[NH][2]) FP4LM_ATTENTION_AVX2 {
      const float* vt = v + t * hd + d0;
      const __m256 v0 = _mm256_maskload_ps(vt, mask[0]), v1 = _mm256_maskload_ps(vt + 8, mask[1]);
      for (int h = 0; h < NH; ++h) {
        const __m256 ph = _mm256_broadcast_ss(p + h * stride + t);
        a[h][0] = _mm256_fmadd_ps(ph, v0, a[h][0]);
        a[h][1] = _mm256_fmadd_ps(ph, v1, a[h][1]);
      }
    };
    int64_t t = 0;
    for (; t + kKU <= n_keys; t += kKU) {
      for (int u = 0; u < kKU; ++u) step(t + u, acc[u]);
    }
    for (; t < n_keys; ++t) step(t, acc[0]);
    for (int h = 0; h < NH; ++h) {
      for (int c = 0; c < 2; ++c) {
        __m256 sum = acc[0][h][c];
        for (int u = 1; u < kKU; ++u) sum = _mm256_add_ps(sum, acc[u][h][c]);
        _mm256_maskstore_ps(out + h * hd + d0 + 8 * c, mask[c],
                            _mm256_mul_ps(sum, _mm256_set1_ps(inv_sum[h])));
      }
    }
  }
}

FP4LM_ATTENTION_AVX2 void AttentionGroupAvx2(const AttentionGroupArgs& a) {
  const int64_t hd = a.head_dim, stride = RoundUp16(a.n_keys);
  const __m256 scale = _mm256_set1_ps(a.scale);
  const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
  __m256 vmax[kMaxGroupHeads];
  for (int64_t h = 0; h < a.n_q; ++h) vmax[h] = minus_inf;
  for (int64_t t = 0; t < a.n_keys; t += 8) {
    const int64_t rem = a.n_keys - t;
    const float* kb = a.k + t * hd;
    if (rem < 8) {
      std::copy(kb, kb + rem * hd, a.key_pad);
      std::fill(a.key_pad + rem * hd, a.key_pad + 8 * hd, 0.0f);
      kb = a.key_pad;
    }
    // Lanes past the last key hold 0 (the padding) and must not raise the maximum. The row
    // has room for them: stride is n_keys rounded up to 16.
    const __m256 live = _mm256_castsi256_ps(TailMask8(rem));
    for (int64_t h = 0; h < a.n_q; ++h) {
      const __m256 s = _mm256_mul_ps(Dot8KeysAvx2(a.q + h * hd, kb, hd), scale);
      _mm256_storeu_ps(a.scores + h * stride + t, s);
      vmax[h] = _mm256_max_ps(vmax[h], _mm256_blendv_ps(minus_inf, s, live));
    }
  }
  float inv_sum[kMaxGroupHeads];
  for (int64_t h = 0; h < a.n_q; ++h) {
    inv_sum[h] = ExpScoresAvx2(a.scores + h * stride, simd::HorizontalMaxAvx2(vmax[h]), a.n_keys);
  }
  for (int64_t h = 0; h < a.n_q; h += 4) {
    const float* p = a.scores + h * stride;
    float* out = a.out + h * hd;
    switch (std::min<int64_t>(4, a.n_q - h)) {
      case 1: WeightedValuesAvx2<1>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
      case 2: WeightedValuesAvx2<2>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
      case 3: WeightedValuesAvx2<3>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
      default: WeightedValuesAvx2<4>(p, stride, a.v, a.n_keys, hd, inv_sum + h, out); break;
    }
  }
}

// ---- Portable: one query head at a time, for CPUs without AVX2 + FMA ------------------------

void AttentionGroupPortable(const AttentionGroupArgs& a) {
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

bool PathSupported(AttentionPath path, const CpuFeatures& f) {
  switch (path) {
    case AttentionPath::kPortable:
    case AttentionPath::kAuto:
      return true;
    case AttentionPath::kAvx2:
      return f.avx2 && f.fma;
    case AttentionPath::kAvx512:
      return f.avx512f;
  }
  return false;
}

using AttentionGroupFn = void (*)(const AttentionGroupArgs&);
AttentionGroupFn GroupFunction(AttentionPath path) {
  switch (path) {
    case AttentionPath::kAvx512:
      return AttentionGroupAvx512;
    case AttentionPath::kAvx2:
      return AttentionGroupAvx2;
    default:
      return AttentionGroupPortable;
  }
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

std::vector<AttentionPath> SupportedAttentionPaths() {
  const CpuFeatures f = DetectCpuFeatures();
  std::vector<AttentionPath> paths;
  for (AttentionPath p : {AttentionPath::kPortable, AttentionPath::kAvx2, AttentionPath::kAvx512}) {
    if (PathSupported(p, f)) paths.push_back(p);
  }
  return paths;
}

const char* AttentionPathName(AttentionPath path) {
  switch (path) {
    case AttentionPath::kAuto: return "auto";
    case AttentionPath::kPortable: return "portable";
    case AttentionPath::kAvx2: return "avx2";
    case AttentionPath::kAvx512: return "avx512";
  }
  return "?";
}

void Attention(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
               const int32_t* positions, float* out, const AttentionShape& s, AttentionPath path) {
  static const AttentionPath best = SupportedAttentionPaths().back();
  // CPUID only for a forced path: kAuto is the decode hot path (a CPUID traps in a VM).
  ENGINE_CHECK(path == AttentionPath::kAuto || PathSupported(path, DetectCpuFeatures()));
  const AttentionGroupFn attention_group =
      GroupFunction(path == AttentionPath::kAuto ? best : path);
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
