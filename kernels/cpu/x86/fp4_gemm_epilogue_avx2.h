// The W4A4 epilogue on 8 int32 sums in a ymm, shared by the 256-bit kernels of kernels/cpu/x86/
// (AVX2, AVX-VNNI and the AVX2 prefill kernel). The functions carry target("avx2"), a subset of
// every caller's target, so they inline into each.
#ifndef FP4LM_KERNELS_CPU_X86_FP4_GEMM_EPILOGUE_AVX2_H_
#define FP4LM_KERNELS_CPU_X86_FP4_GEMM_EPILOGUE_AVX2_H_

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/x86/fp4_gemm_kernels.h"

namespace engine::kernels::fp4_gemm_internal {

#define FP4LM_AVX2_EPILOGUE __attribute__((target("avx2")))

// Lane mask for _mm256_maskload/maskstore: lanes < remaining are on.
FP4LM_AVX2_EPILOGUE inline __m256i ColumnMask8(int64_t remaining) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const auto on = static_cast<int32_t>(std::min<int64_t>(remaining, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(on), lane);
}

// acc holds sum_t (Int(a) + a_bias) * Int(w) for the 8 weight rows col0 .. col0 + 7 and one
// activation row; see StoreRow in fp4_gemm_epilogue_avx512.h.
FP4LM_AVX2_EPILOGUE inline void StoreRow8(const TileTask& t, __m256i acc, int64_t row,
                                          int64_t col0) {
  if (col0 >= t.n) return;
  const __m256i row_sum = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.row_sum + col0));
  const __m256i correction = _mm256_mullo_epi32(row_sum, _mm256_set1_epi32(t.a_bias));
  __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(acc, correction));
  v = _mm256_mul_ps(v, _mm256_set1_ps(t.c));
  v = _mm256_mul_ps(v, _mm256_set1_ps(t.a_scale));
  v = _mm256_mul_ps(v, _mm256_loadu_ps(t.row_scale + col0));
  if (t.bias != nullptr) v = _mm256_add_ps(v, _mm256_loadu_ps(t.bias + col0));
  float* y = t.y + row * t.n + col0;
  // Full rows without masks: vmaskmovps stores are slow on AMD (perf: 14% of the AVX2 prefill
  // kernel's own time, outside the asm loop, went to them).
  if (t.n - col0 >= 8) {
    if (t.accumulate) v = _mm256_add_ps(_mm256_loadu_ps(y), v);
    _mm256_storeu_ps(y, v);
    return;
  }
  const __m256i mask = ColumnMask8(t.n - col0);
  if (t.accumulate) v = _mm256_add_ps(_mm256_maskload_ps(y, mask), v);
  _mm256_maskstore_ps(y, mask, v);
}

#undef FP4LM_AVX2_EPILOGUE

}  // namespace engine::kernels::fp4_gemm_internal

#endif  // FP4LM_KERNELS_CPU_X86_FP4_GEMM_EPILOGUE_AVX2_H_
