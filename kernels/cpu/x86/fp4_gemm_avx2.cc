// 256-bit kernels of the W4A4 GEMM (kernels/cpu/fp4_gemm.h) for CPUs without AVX-512 VNNI:
// AVX2 (maddubs + madd) and AVX-VNNI (vpdpbusd on ymm), one kernel body compiled twice under
// different target attributes; plus the AVX2 activation unpacking and quantization helpers.
// The driver calls each only when CPUID reports its features. Target attributes, not per-file
// -m flags or `#pragma GCC target` (which clang ignores): with -mavxvnni on the file, clang fused
// the AVX2 kernel's madd + add into vpdpwssd, an illegal instruction on AVX2-only CPUs.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/fp4_gemm_epilogue_avx2.h"
#include "kernels/cpu/x86/fp4_gemm_kernels.h"

namespace engine::kernels::fp4_gemm_internal {

#define FP4LM_KERNEL_TARGET __attribute__((target("avx2")))
namespace avx2_impl {
namespace {
constexpr bool kVnni = false;
#include "kernels/cpu/x86/fp4_gemm_avx2_body.inc"
}  // namespace
}  // namespace avx2_impl

void RunTilesAvx2(const TileTask& task) { avx2_impl::RunTiles(task); }

FP4LM_KERNEL_TARGET void UnpackActivationRowAvx2(const uint8_t* codes, int64_t k, int64_t k_pad,
                                                 const uint8_t* lut, uint8_t pad, uint8_t* out) {
  const __m128i table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lut));
  const __m128i low4 = _mm_set1_epi8(0x0f);
  const int64_t bytes = k / 2;
  int64_t j = 0;
  for (; j + 16 <= bytes; j += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + j));
    const __m128i even = _mm_shuffle_epi8(table, _mm_and_si128(v, low4));
    const __m128i odd = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(v, 4), low4));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j), _mm_unpacklo_epi8(even, odd));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * j + 16), _mm_unpackhi_epi8(even, odd));
  }
  for (; j < bytes; ++j) {
    out[2 * j] = lut[codes[j] & 0xf];
    out[2 * j + 1] = lut[codes[j] >> 4];
  }
  for (int64_t t = k; t < k_pad; ++t) out[t] = pad;
}

FP4LM_KERNEL_TARGET void QuantizeRowAvx2(const float* x, int64_t k, const float* thresholds,
                                         float inv_scale, uint8_t* codes) {
  const __m256 inv = _mm256_set1_ps(inv_scale);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 th[7];
  for (int i = 0; i < 7; ++i) th[i] = _mm256_set1_ps(thresholds[i]);
  // Gathers byte 0 of each 64-bit lane into bytes 0-1 of each 128-bit half.
  const __m256i gather = _mm256_setr_epi8(0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, -1, 0, 8, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                          -1, -1, -1, -1);
  int64_t j = 0;
  for (; j + 8 <= k; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), inv);
    const __m256 a = _mm256_and_ps(v, abs_mask);
    __m256i mag = _mm256_setzero_si256();
    // A passed compare is all ones (-1): subtracting counts it. (Two loops keep the compare
    // predicates immediate constants, as unoptimized builds require.)
    for (int i = 0; i < 7; i += 2) {
      mag = _mm256_sub_epi32(mag, _mm256_castps_si256(_mm256_cmp_ps(a, th[i], _CMP_GT_OQ)));
    }
    for (int i = 1; i < 7; i += 2) {
      mag = _mm256_sub_epi32(mag, _mm256_castps_si256(_mm256_cmp_ps(a, th[i], _CMP_GE_OQ)));
    }
    const __m256i sign =
        _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(v), 28), _mm256_set1_epi32(0x8));
    __m256i code = _mm256_or_si256(mag, sign);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7), nan);
    const __m256i packed = _mm256_shuffle_epi8(
        _mm256_or_si256(code, _mm256_srli_epi64(code, 28)), gather);
    const uint32_t lo = static_cast<uint32_t>(_mm256_extract_epi16(packed, 0));
    const uint32_t hi = static_cast<uint32_t>(_mm256_extract_epi16(packed, 8));
    const uint32_t four = (lo & 0xffffu) | (hi << 16);
    std::memcpy(codes + j / 2, &four, 4);
  }
  for (; j < k; j += 2) {
    const uint8_t even = EncodeByThresholds(x[j] * inv_scale, thresholds);
    const uint8_t odd = EncodeByThresholds(x[j + 1] * inv_scale, thresholds);
    codes[j / 2] = static_cast<uint8_t>(even | (odd << 4));
  }
}
#undef FP4LM_KERNEL_TARGET

#define FP4LM_KERNEL_TARGET __attribute__((target("avx2,avxvnni")))
namespace avxvnni_impl {
namespace {
constexpr bool kVnni = true;
#include "kernels/cpu/x86/fp4_gemm_avx2_body.inc"
}  // namespace
}  // namespace avxvnni_impl

void RunTilesAvxVnni(const TileTask& task) { avxvnni_impl::RunTiles(task); }
#undef FP4LM_KERNEL_TARGET

}  // namespace engine::kernels::fp4_gemm_internal
