// Horizontal reductions shared by the CPU kernels that end a dot product in one register.
// Target attributes rather than per-file -m flags, as everywhere in kernels/cpu: callers are
// compiled for the baseline ISA and call these only on CPUs that have it.
#ifndef FP4LM_KERNELS_CPU_X86_SIMD_REDUCE_H_
#define FP4LM_KERNELS_CPU_X86_SIMD_REDUCE_H_

#include <immintrin.h>

namespace engine::kernels::simd {

__attribute__((target("avx2,fma"))) inline float HorizontalSumAvx2(__m256 v) {
  const __m128 sum4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 sum2 = _mm_add_ps(sum4, _mm_movehl_ps(sum4, sum4));
  return _mm_cvtss_f32(_mm_add_ss(sum2, _mm_movehdup_ps(sum2)));
}

__attribute__((target("avx2,fma"))) inline float HorizontalMaxAvx2(__m256 v) {
  __m128 max4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
  return _mm_cvtss_f32(_mm_max_ss(max4, _mm_movehdup_ps(max4)));
}

// GCC 12's _mm512_reduce_add_ps and _mm512_castps512_ps256 trip -Wuninitialized inside its own
// header (an undefined pass-through operand); zero-masked extracts avoid it.
__attribute__((target("avx512f"))) inline __m256 FoldHalvesAvx512(__m512 v, bool max) {
  const __m512d d = _mm512_castps_pd(v);
  const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 0));
  const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xff, d, 1));
  return max ? _mm256_max_ps(lo, hi) : _mm256_add_ps(lo, hi);
}

__attribute__((target("avx512f"))) inline float ReduceAddAvx512(__m512 v) {
  return HorizontalSumAvx2(FoldHalvesAvx512(v, /*max=*/false));
}

__attribute__((target("avx512f"))) inline float ReduceMaxAvx512(__m512 v) {
  return HorizontalMaxAvx2(FoldHalvesAvx512(v, /*max=*/true));
}

}  // namespace engine::kernels::simd

#endif  // FP4LM_KERNELS_CPU_X86_SIMD_REDUCE_H_
