// SiLU(gate) * up with glibc's expf vectorized (silu_mul_avx512.h). Compiled with target
// attributes and -ffp-contract=off (kernels/CMakeLists.txt): every multiply, add and FMA below
// is one that glibc's __expf_fma performs, in its order, so no other may be fused.
#include "kernels/cpu/x86/silu_mul_avx512.h"

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

// GCC 12's AVX-512 headers pass _mm512_undefined_*() as the pass-through operand of unmasked
// intrinsics, which -W(maybe-)uninitialized reports once inlined (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace engine::kernels::silu_internal {

void SiluMulScalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

#ifdef __GLIBC__
namespace {

// glibc's expf since 2.28 (sysdeps/ieee754/flt-32/e_expf.c, from ARM's optimized-routines):
// in double, x / ln2 * 32 = k + r with k an integer (rounded by adding 1.5 * 2^52) and
// |r| <= 1/2; exp(x) = 2^(k/32) * 2^(r/32), the first factor from a 32-entry table with k / 32
// added to its exponent, the second a cubic in r; one rounding to float at the end. The
// constants are __exp2f_data's (read from Debian's libm 2.36), and the operation order is that
// of its FMA build, __expf_fma, which glibc's ifunc picks on CPUs with FMA and AVX2 (all with
// AVX-512, unless GLIBC_TUNABLES masks them). A block of 16 with any |x| >= 88 or NaN (glibc's
// overflow/underflow branches) runs the scalar loop instead. Whether the libm this process
// calls agrees is checked once at run time (SiluMulAvx512AgreesWithScalar) and, densely, by
// tests/kernels/silu_mul_test.cc.
constexpr uint64_t kExp2Table[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
constexpr uint64_t kInvLn2Scaled = 0x40471547652b82fe;  // 32 / ln 2
constexpr uint64_t kShift = 0x4338000000000000;         // 1.5 * 2^52
constexpr uint64_t kPoly[3] = {0x3ebc6af84b912394, 0x3f2ebfce50fac4f3, 0x3f962e42ff0c52d6};
// glibc's test for the slow branches: the float's top 12 bits without the sign, >= those of 88.
constexpr uint32_t kSlowTop12 = 0x42b;

#define FP4LM_SILU_AVX512 __attribute__((target("avx512f")))

FP4LM_SILU_AVX512 inline __m512d Broadcast(uint64_t bits) {
  return _mm512_castsi512_pd(_mm512_set1_epi64(static_cast<long long>(bits)));
}

// The table in four registers of 8 entries.
struct Exp2Table {
  __m512i t[4];
};

FP4LM_SILU_AVX512 inline Exp2Table LoadExp2Table() {
  Exp2Table table;
  for (int i = 0; i < 4; ++i) table.t[i] = _mm512_loadu_si512(kExp2Table + 8 * i);
  return table;
}

// glibc's expf of 8 floats (its normal branch: |x| < 88), in double lanes.
FP4LM_SILU_AVX512 inline __m256 Exp8(__m256 x, const Exp2Table& table) {
  const __m512d inv_ln2 = Broadcast(kInvLn2Scaled), shift = Broadcast(kShift);
  const __m512d xd = _mm512_cvtps_pd(x);
  const __m512d shifted = _mm512_fmadd_pd(inv_ln2, xd, shift);  // k + shift, k rounded to even
  const __m512i ki = _mm512_castpd_si512(shifted);
  const __m512d kd = _mm512_sub_pd(shifted, shift);
  const __m512d r = _mm512_fmsub_pd(inv_ln2, xd, kd);
  // tab[k % 32] (entries 0-15 and 16-31 by one two-register permute each, picked by bit 4 of
  // k), plus k << 47, which puts k / 32 into the exponent (the table subtracts k % 32's share).
  const __m512i low16 = _mm512_permutex2var_epi64(table.t[0], ki, table.t[1]);
  const __m512i high16 = _mm512_permutex2var_epi64(table.t[2], ki, table.t[3]);
  const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
  const __m512i t =
      _mm512_add_epi64(_mm512_mask_blend_epi64(upper, low16, high16), _mm512_slli_epi64(ki, 47));
  const __m512d s = _mm512_castsi512_pd(t);
  // s * (C0 r^3 + C1 r^2 + C2 r + 1) as glibc evaluates it.
  const __m512d z = _mm512_fmadd_pd(Broadcast(kPoly[0]), r, Broadcast(kPoly[1]));
  const __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(Broadcast(kPoly[2]), r, _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

}  // namespace

bool SiluMulAvx512AgreesWithScalar() {
  // 4096 gates spread over glibc's normal range (2048 evenly spaced bit patterns below 88, both
  // signs) and up = 1: an expf of another algorithm or rounding differs on some of them.
  constexpr int kSamples = 4096;
  constexpr uint32_t kStride = 0x42b00000u / (kSamples / 2);
  float gate[kSamples], up[kSamples], want[kSamples], got[kSamples];
  for (int i = 0; i < kSamples; ++i) {
    const uint32_t bits = static_cast<uint32_t>(i / 2) * kStride | (i % 2 == 0 ? 0u : 0x80000000u);
    std::memcpy(&gate[i], &bits, sizeof(bits));
    up[i] = 1.0f;
  }
  SiluMulScalar(gate, up, want, kSamples);
  SiluMulAvx512(gate, up, got, kSamples);
  return std::memcmp(want, got, sizeof(want)) == 0;
}

FP4LM_SILU_AVX512 void SiluMulAvx512(const float* gate, const float* up, float* out, int64_t n) {
  const Exp2Table table = LoadExp2Table();
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  const __m512i top12_mask = _mm512_set1_epi32(0x7ff);
  const __m512i slow_top12 = _mm512_set1_epi32(static_cast<int>(kSlowTop12));
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512i x_bits = _mm512_xor_si512(_mm512_castps_si512(g), sign);  // -gate, exactly
    const __m512i top12 = _mm512_and_si512(_mm512_srli_epi32(x_bits, 20), top12_mask);
    if (_mm512_cmpge_epu32_mask(top12, slow_top12) != 0) {
      SiluMulScalar(gate + i, up + i, out + i, 16);  // |gate| >= 88, inf or NaN: rare
      continue;
    }
    const __m512d x = _mm512_castsi512_pd(x_bits);
    const __m256 e_low = Exp8(_mm256_castpd_ps(_mm512_castpd512_pd256(x)), table);
    const __m256 e_high = Exp8(_mm256_castpd_ps(_mm512_extractf64x4_pd(x, 1)), table);
    const __m512 e = _mm512_castpd_ps(_mm512_insertf64x4(
        _mm512_castpd256_pd512(_mm256_castps_pd(e_low)), _mm256_castps_pd(e_high), 1));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
  SiluMulScalar(gate + i, up + i, out + i, n - i);
}

#else
void SiluMulAvx512(const float* gate, const float* up, float* out, int64_t n) {
  SiluMulScalar(gate, up, out, n);
}

bool SiluMulAvx512AgreesWithScalar() { return false; }
#endif

}  // namespace engine::kernels::silu_internal
