// F16- and int8-weight matmuls (f16_matmul.h), written once over the weight row type: run-time
// ISA dispatch, decode tiles that widen each weight row in registers as it streams by, and the
// prefill path: the tiled FP32 GEMM shared with MatMulF32 (gemm_f32_tiles.h), fed by widening
// blocks of weight rows once per call.
#include "kernels/cpu/f16_matmul.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/core/cpu_features.h"
#include "kernels/core/half.h"
#include "kernels/core/status_macros.h"
#include "kernels/cpu/gemm_f32_tiles.h"
#include "kernels/cpu/x86/simd_reduce.h"

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once they are inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define FP4LM_F16_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))
#define FP4LM_F16_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace engine::kernels {
namespace {

// ---- Weight rows --------------------------------------------------------------------------------
//
// How an element of each weight type reaches float, in vectors and one at a time. The kernels
// below are written once over these.

struct F16Row {
  using Element = uint16_t;
  FP4LM_F16_AVX512 static __m512 Load16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  FP4LM_F16_AVX512 static __m512 Load16Masked(const uint16_t* p, __mmask16 mask) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
  }
  FP4LM_F16_AVX2 static __m256 Load8(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float ToFloat(uint16_t h) { return F16ToF32(h); }
};

struct I8Row {
  using Element = int8_t;
  FP4LM_F16_AVX512 static __m512 Load16(const int8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  FP4LM_F16_AVX512 static __m512 Load16Masked(const int8_t* p, __mmask16 mask) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, p)));
  }
  FP4LM_F16_AVX2 static __m256 Load8(const int8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static float ToFloat(int8_t q) { return static_cast<float>(q); }
};

// y[i, j] = acc * scale[j] + bias[j], each factor optional (scale: I8 rows only).
inline float Epilogue(float acc, const float* scale, const float* bias, int64_t j) {
  if (scale != nullptr) acc *= scale[j];
  return bias != nullptr ? acc + bias[j] : acc;
}

// ---- Decode: small m, bandwidth-bound ----------------------------------------------------------
//
// A tile is kDecodeRows weight rows against up to kDecodeMaxMr activation rows, dot-product
// style (one accumulator per (activation row, weight row), reduced at the end): the weights are
// read once, in their stored width, and widened right before the FMA.
constexpr int kDecodeRows = 4;
// Software prefetch 2 KiB ahead in each weight row, once per cache line, as the W4A4 decode
// kernel does (kernels/cpu/x86/fp4_gemm_avx512vnni.cc): the hardware prefetcher alone falls
// short of the read bandwidth on four concurrent streams. Each stream continues in the row
// kDecodeRows further on (the same lane of the next tile), so a prefetch that runs past the end
// of its row goes there and not into the next row of this tile, which another stream is already
// reading: that mistake wasted every prefetch of a 2 KiB int8 row (k = 2048) and fixing it took
// a DRAM-sized int8 GEMV from ~9-13 to ~15-21 GB/s and F16 from ~13-15 to ~20 GB/s
// (linear_bench m=1, n x k = 262144 x 2048 and 131072 x 4096, 2 threads, Sapphire Rapids).
// The AVX-512 kernel prefetches into L2 (T1) as the W4A4 one does: on Zen 4 prefetcht0 held
// F16 decode to 11.0-11.7 t/s against 16.9-17.7 with prefetcht1 (fp4lm bench --shape
// tinyllama-1.1b --types f16 -n 64, 3 interleaved runs, 2 threads). The AVX2 kernel keeps T0:
// it was tuned on AVX2-only Zen 3, and this change was not measured there.
constexpr int64_t kDecodePrefetchBytes = 2048;
constexpr int64_t kCacheLineBytes = 64;
constexpr int kDecodeMaxMr = 4;
// From this m on the prefill path wins: widening each weight once and reusing it from cache for
// all m beats re-widening it per 4 activation rows. Measured on Sapphire Rapids (2048 x 2048 F16,
// one thread): m = 24 decode 100 / prefill 81 GOP/s, m = 32 99 / 107, m = 512 56 / 139.
constexpr int64_t kPackMinM = 32;

using DecodeOut = float[kDecodeMaxMr][kDecodeRows];
template <typename Row>
using DecodeTileFn = void (*)(const float* x, int64_t k,
                              const typename Row::Element* const* rows, DecodeOut& out);

using simd::HorizontalSumAvx2;
using simd::ReduceAddAvx512;

// 16 k of MR activation rows against kDecodeRows weight rows.
template <typename Row, int MR>
FP4LM_F16_AVX512 inline void DecodeStepAvx512(const float* x, int64_t k,
                                              const typename Row::Element* const* rows,
                                              int64_t kk, __m512 (&acc)[MR][kDecodeRows]) {
  __m512 wv[kDecodeRows];
  for (int c = 0; c < kDecodeRows; ++c) wv[c] = Row::Load16(rows[c] + kk);
  for (int r = 0; r < MR; ++r) {
    const __m512 xv = _mm512_loadu_ps(x + r * k + kk);
    for (int c = 0; c < kDecodeRows; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
  }
}

template <typename Row, int MR>
FP4LM_F16_AVX512 void DecodeTileAvx512(const float* x, int64_t k,
                                       const typename Row::Element* const* rows, DecodeOut& out) {
  using Element = typename Row::Element;
  // One cache line of each row per step: 2 vectors of F16, 4 of int8.
  constexpr int64_t kLine = kCacheLineBytes / sizeof(Element);
  constexpr int64_t kAhead = kDecodePrefetchBytes / sizeof(Element);
  __m512 acc[MR][kDecodeRows];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kDecodeRows; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  int64_t kk = 0;
  for (; kk + kLine <= k; kk += kLine) {
    int64_t ahead = kk + kAhead;
    if (ahead >= k) ahead += (kDecodeRows - 1) * k;  // into the next tile; cannot fault
    for (int c = 0; c < kDecodeRows; ++c) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[c] + ahead), _MM_HINT_T1);
    }
    for (int64_t v = 0; v < kLine; v += 16) DecodeStepAvx512<Row, MR>(x, k, rows, kk + v, acc);
  }
  for (; kk + 16 <= k; kk += 16) DecodeStepAvx512<Row, MR>(x, k, rows, kk, acc);
  if (kk < k) {  // masked tail: lanes past k load as 0 in both operands
    const __mmask16 mask = static_cast<__mmask16>((1u << (k - kk)) - 1);
    __m512 wv[kDecodeRows];
    for (int c = 0; c < kDecodeRows; ++c) wv[c] = Row::Load16Masked(rows[c] + kk, mask);
    for (int r = 0; r < MR; ++r) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * k + kk);
      for (int c = 0; c < kDecodeRows; ++c) acc[r][c] = _mm512_fmadd_ps(xv, wv[c], acc[r][c]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kDecodeRows; ++c) out[r][c] = ReduceAddAvx512(acc[r][c]);
  }
}

// 8 k of MR activation rows against kDecodeRows weight rows.
template <typename Row, int MR>
FP4LM_F16_AVX2 inline void DecodeStepAvx2(const float* x, int64_t k,
                                          const typename Row::Element* const* rows, int64_t kk,
                                          __m256 (&acc)[MR][kDecodeRows]) {
  __m256 wv[kDecodeRows];
  for (int c = 0; c < kDecodeRows; ++c) wv[c] = Row::Load8(rows[c] + kk);
  for (int r = 0; r < MR; ++r) {
    const __m256 xv = _mm256_loadu_ps(x + r * k + kk);
    for (int c = 0; c < kDecodeRows; ++c) acc[r][c] = _mm256_fmadd_ps(xv, wv[c], acc[r][c]);
  }
}

// DecodeTileAvx512 in 8-lane vectors, with the same prefetch.
template <typename Row, int MR>
FP4LM_F16_AVX2 void DecodeTileAvx2(const float* x, int64_t k,
                                   const typename Row::Element* const* rows, DecodeOut& out) {
  using Element = typename Row::Element;
  constexpr int64_t kLine = kCacheLineBytes / sizeof(Element);
  constexpr int64_t kAhead = kDecodePrefetchBytes / sizeof(Element);
  __m256 acc[MR][kDecodeRows];
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kDecodeRows; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  int64_t kk = 0;
  for (; kk + kLine <= k; kk += kLine) {
    int64_t ahead = kk + kAhead;
    if (ahead >= k) ahead += (kDecodeRows - 1) * k;  // into the next tile; cannot fault
    for (int c = 0; c < kDecodeRows; ++c) {
      _mm_prefetch(reinterpret_cast<const char*>(rows[c] + ahead), _MM_HINT_T0);
    }
    for (int64_t v = 0; v < kLine; v += 8) DecodeStepAvx2<Row, MR>(x, k, rows, kk + v, acc);
  }
  for (; kk + 8 <= k; kk += 8) DecodeStepAvx2<Row, MR>(x, k, rows, kk, acc);
  for (int r = 0; r < MR; ++r) {
    for (int c = 0; c < kDecodeRows; ++c) {
      float tail = 0.0f;
      for (int64_t t = kk; t < k; ++t) tail += x[r * k + t] * Row::ToFloat(rows[c][t]);
      out[r][c] = HorizontalSumAvx2(acc[r][c]) + tail;
    }
  }
}

template <typename Row>
void DecodePath(ThreadPool& pool, const DecodeTileFn<Row> (&tiles)[kDecodeMaxMr + 1],
                const float* x, const typename Row::Element* w, const float* scale,
                const float* bias, float* y, int64_t m, int64_t n, int64_t k) {
  const int64_t n_tiles = (n + kDecodeRows - 1) / kDecodeRows;
  pool.ParallelFor(n_tiles, [&](int, int64_t begin, int64_t end) {
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t j0 = tile * kDecodeRows;
      const int nr = static_cast<int>(std::min<int64_t>(kDecodeRows, n - j0));
      // Rows past n repeat the last row: no padded copy, and their results are dropped.
      const typename Row::Element* rows[kDecodeRows];
      for (int c = 0; c < kDecodeRows; ++c) rows[c] = w + std::min<int64_t>(j0 + c, n - 1) * k;
      for (int64_t i0 = 0; i0 < m; i0 += kDecodeMaxMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kDecodeMaxMr, m - i0));
        DecodeOut out;
        tiles[mr](x + i0 * k, k, rows, out);
        for (int r = 0; r < mr; ++r) {
          for (int c = 0; c < nr; ++c) {
            y[(i0 + r) * n + j0 + c] = Epilogue(out[r][c], scale, bias, j0 + c);
          }
        }
      }
    }
  });
}

template <typename Row>
constexpr DecodeTileFn<Row> kDecodeAvx512[kDecodeMaxMr + 1] = {
    nullptr, DecodeTileAvx512<Row, 1>, DecodeTileAvx512<Row, 2>, DecodeTileAvx512<Row, 3>,
    DecodeTileAvx512<Row, 4>};
template <typename Row>
constexpr DecodeTileFn<Row> kDecodeAvx2[kDecodeMaxMr + 1] = {
    nullptr, DecodeTileAvx2<Row, 1>, DecodeTileAvx2<Row, 2>, DecodeTileAvx2<Row, 3>,
    DecodeTileAvx2<Row, 4>};

// ---- Prefill: large m, compute-bound ------------------------------------------------------------
//
// The shared tiled GEMM (gemm_f32_tiles.h) with weight rows widened into its FP32 scratch: each
// weight is widened once per call and then reused from cache for every activation row.

template <typename Row>
FP4LM_F16_AVX512 void WidenAvx512(const void* data, int64_t index, int64_t count, float* dst) {
  const typename Row::Element* src = static_cast<const typename Row::Element*>(data) + index;
  int64_t t = 0;
  for (; t + 16 <= count; t += 16) _mm512_storeu_ps(dst + t, Row::Load16(src + t));
  if (t < count) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (count - t)) - 1);
    _mm512_mask_storeu_ps(dst + t, mask, Row::Load16Masked(src + t, mask));
  }
}

template <typename Row>
FP4LM_F16_AVX2 void WidenAvx2(const void* data, int64_t index, int64_t count, float* dst) {
  const typename Row::Element* src = static_cast<const typename Row::Element*>(data) + index;
  int64_t t = 0;
  for (; t + 8 <= count; t += 8) _mm256_storeu_ps(dst + t, Row::Load8(src + t));
  for (; t < count; ++t) dst[t] = Row::ToFloat(src[t]);
}

// The tiled GEMM without bias, then the per-row scale and the bias in one pass over y.
template <typename Row>
void PrefillPath(ThreadPool& pool, gemm_internal::TileIsa isa, const float* x,
                 const typename Row::Element* w, const float* scale, const float* bias, float* y,
                 int64_t m, int64_t n, int64_t k) {
  const auto widen = isa == gemm_internal::TileIsa::kAvx512 ? WidenAvx512<Row> : WidenAvx2<Row>;
  if (scale == nullptr) {
    return gemm_internal::TiledMatMul(pool, isa, x, {w, widen}, bias, y, m, n, k);
  }
  gemm_internal::TiledMatMul(pool, isa, x, {w, widen}, nullptr, y, m, n, k);
  pool.ParallelFor(m, [&](int, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = Epilogue(y[i * n + j], scale, bias, j);
    }
  });
}

// ---- Scalar -------------------------------------------------------------------------------------

template <typename Row>
void ScalarPath(ThreadPool& pool, const float* x, const typename Row::Element* w,
                const float* scale, const float* bias, float* y, int64_t m, int64_t n,
                int64_t k) {
  pool.ParallelFor(n, [&](int, int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t j = begin; j < end; ++j) {
      for (int64_t t = 0; t < k; ++t) row[t] = Row::ToFloat(w[j * k + t]);
      for (int64_t i = 0; i < m; ++i) {
        float acc = 0.0f;
        for (int64_t t = 0; t < k; ++t) acc += x[i * k + t] * row[t];
        y[i * n + j] = Epilogue(acc, scale, bias, j);
      }
    }
  });
}

// ---- Dispatch -----------------------------------------------------------------------------------

const CpuFeatures& Features() {
  static const CpuFeatures features = DetectCpuFeatures();  // CPUID once; immutable after
  return features;
}

bool IsaSupported(F16MatMulIsa isa) {
  const CpuFeatures& f = Features();
  switch (isa) {
    case F16MatMulIsa::kAuto:
    case F16MatMulIsa::kScalar:
      return true;
    case F16MatMulIsa::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case F16MatMulIsa::kAvx512:
      return f.avx512f && f.avx512bw && f.avx512vl;
  }
  return false;
}

}  // namespace

const char* F16MatMulIsaName(F16MatMulIsa isa) {
  switch (isa) {
    case F16MatMulIsa::kAuto:
      return "auto";
    case F16MatMulIsa::kScalar:
      return "scalar";
    case F16MatMulIsa::kAvx2:
      return "avx2";
    case F16MatMulIsa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

std::vector<F16MatMulIsa> SupportedF16MatMulIsas() {
  std::vector<F16MatMulIsa> isas;
  for (F16MatMulIsa isa : {F16MatMulIsa::kScalar, F16MatMulIsa::kAvx2, F16MatMulIsa::kAvx512}) {
    if (IsaSupported(isa)) isas.push_back(isa);
  }
  return isas;
}

namespace {

template <typename Row>
void RowMatMul(ThreadPool& pool, const float* x, const typename Row::Element* w,
               const float* scale, const float* bias, float* y, int64_t m, int64_t n, int64_t k,
               F16MatMulIsa isa) {
  ENGINE_CHECK(m >= 0 && n >= 0 && k >= 0 && IsaSupported(isa));
  if (m == 0 || n == 0) return;
  if (isa == F16MatMulIsa::kAuto) {
    static const F16MatMulIsa best = SupportedF16MatMulIsas().back();
    isa = best;
  }
  if (k == 0) isa = F16MatMulIsa::kScalar;  // y = bias; the prefill path assumes k > 0
  switch (isa) {
    case F16MatMulIsa::kAvx512:
      if (m >= kPackMinM) {
        return PrefillPath<Row>(pool, gemm_internal::TileIsa::kAvx512, x, w, scale, bias, y, m,
                                n, k);
      }
      return DecodePath<Row>(pool, kDecodeAvx512<Row>, x, w, scale, bias, y, m, n, k);
    case F16MatMulIsa::kAvx2:
      if (m >= kPackMinM) {
        return PrefillPath<Row>(pool, gemm_internal::TileIsa::kAvx2, x, w, scale, bias, y, m, n,
                                k);
      }
      return DecodePath<Row>(pool, kDecodeAvx2<Row>, x, w, scale, bias, y, m, n, k);
    default:
      return ScalarPath<Row>(pool, x, w, scale, bias, y, m, n, k);
  }
}

}  // namespace

void MatMulF16(ThreadPool& pool, const float* x, const uint16_t* w, const float* bias, float* y,
               int64_t m, int64_t n, int64_t k, F16MatMulIsa isa) {
  RowMatMul<F16Row>(pool, x, w, nullptr, bias, y, m, n, k, isa);
}

void MatMulF16(ThreadPool& pool, const float* x, const uint16_t* w, const float* bias, float* y,
               int64_t m, int64_t n, int64_t k) {
  MatMulF16(pool, x, w, bias, y, m, n, k, F16MatMulIsa::kAuto);
}

void MatMulI8(ThreadPool& pool, const float* x, const int8_t* q, const float* scale,
              const float* bias, float* y, int64_t m, int64_t n, int64_t k, F16MatMulIsa isa) {
  ENGINE_CHECK(scale != nullptr);
  RowMatMul<I8Row>(pool, x, q, scale, bias, y, m, n, k, isa);
}

void MatMulI8(ThreadPool& pool, const float* x, const int8_t* q, const float* scale,
              const float* bias, float* y, int64_t m, int64_t n, int64_t k) {
  MatMulI8(pool, x, q, scale, bias, y, m, n, k, F16MatMulIsa::kAuto);
}

}  // namespace engine::kernels
