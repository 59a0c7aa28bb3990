// The W4A4 epilogue on 16 int32 sums in a zmm, shared by the AVX-512 VNNI and AMX kernels of
// kernels/cpu/x86/. Include only from translation units whose callers run with AVX-512
// (the functions carry their target attribute, so nothing is emitted for other CPUs).
#ifndef FP4LM_KERNELS_CPU_X86_FP4_GEMM_EPILOGUE_AVX512_H_
#define FP4LM_KERNELS_CPU_X86_FP4_GEMM_EPILOGUE_AVX512_H_

#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/x86/fp4_gemm_kernels.h"

namespace engine::kernels::fp4_gemm_internal {

#define FP4LM_AVX512_EPILOGUE __attribute__((target("avx512f,avx512bw")))

FP4LM_AVX512_EPILOGUE inline __mmask16 ColumnMask(int64_t remaining) {
  return remaining >= 16 ? __mmask16(0xffff) : __mmask16((1u << remaining) - 1);
}

// acc holds sum_t (Int(a) + a_bias) * Int(w) for the 16 weight rows of tile `tile` and one
// activation row. Removes a_bias * row_sum (exact in wrapping int32 arithmetic since the true
// sum fits) and applies the reference epilogue lane-wise, in the reference's order.
FP4LM_AVX512_EPILOGUE inline void StoreRow(const TileTask& t, __m512i acc, int64_t row,
                                           int64_t tile) {
  const int64_t col0 = tile * kTileRows;
  const __mmask16 mask = ColumnMask(t.n - col0);
  const __m512i correction =
      _mm512_mullo_epi32(_mm512_loadu_si512(t.row_sum + col0), _mm512_set1_epi32(t.a_bias));
  __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, correction));
  v = _mm512_mul_ps(v, _mm512_set1_ps(t.c));
  v = _mm512_mul_ps(v, _mm512_set1_ps(t.a_scale));
  v = _mm512_mul_ps(v, _mm512_loadu_ps(t.row_scale + col0));
  if (t.bias != nullptr) v = _mm512_add_ps(v, _mm512_loadu_ps(t.bias + col0));
  float* y = t.y + row * t.n + col0;
  if (t.accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, y), v);
  _mm512_mask_storeu_ps(y, mask, v);
}

#undef FP4LM_AVX512_EPILOGUE

}  // namespace engine::kernels::fp4_gemm_internal

#endif  // FP4LM_KERNELS_CPU_X86_FP4_GEMM_EPILOGUE_AVX512_H_
