// The three 4-bit floating-point formats of LLM-FP4 (E2M1, E3M0, E1M2): codecs and the exact
// integer values that W4A4 kernels multiply. One definition for the quantizer, the reference
// kernels, CPU SIMD and CUDA, like kernels/core/fp4.h (whose E2M1 codec this reuses).
#ifndef FP4LM_KERNELS_CORE_FP4_FORMAT_H_
#define FP4LM_KERNELS_CORE_FP4_FORMAT_H_

#include <cstdint>

#include "kernels/core/fp4.h"
#include "kernels/core/host_device.h"

// Every format is 1 sign bit + 3 magnitude bits, with subnormals and without Inf/NaN. Codes
// 8..15 are codes 0..7 negated (0x8 is -0.0). Packing is fp4.h's: element 2i in the LOW
// nibble of byte i, element 2i+1 in the HIGH nibble.
//
//   code 0..7            0     1     2     3     4     5     6     7   IntScale  Int of codes 0..7
//   E2M1 (e2m1, bias 1)  0    0.5    1    1.5    2     3     4     6      2     0 1 2 3 4 6  8 12
//   E3M0 (e3m0, bias 3)  0    0.25  0.5    1     2     4     8    16      4     0 1 2 4 8 16 32 64
//   E1M2 (e1m2, bias 1)  0    0.25  0.5  0.75    1   1.25  1.5  1.75     4     0 1 2 3 4 5  6  7
//
// E3M0 has no mantissa: e = 0 is zero, e = 1..7 is 2^(e-3) (bias 3 puts the max at 16).
// E1M2: e = 0 is subnormal m/4, e = 1 is 1 + m/4.
//
// Int(code) = magnitude * IntScale (signed) is an exact small integer, |Int| <= kIntMax
// (12, 64, 7). W4A4 GEMMs accumulate Int(a) * Int(w) in int32 exactly and multiply by
// 1 / (IntScale_a * IntScale_w) (a power of two) once per output (kernels/ref/w4a4_ref.h).
//
// Encoding rules (all three formats, the same rules as EncodeE2M1 in fp4.h):
//   - round to nearest; an exact tie goes to the EVEN code (lowest bit 0) of the two
//     neighbours — for E2M1/E1M2 that is "mantissa LSB 0", for E3M0 the even exponent;
//   - finite values beyond the max and +-Inf saturate to +-max;
//   - the sign is kept, also when the magnitude rounds to 0 (-0.0 and -tiny give 0x8);
//   - NaN (either sign) gives 0x7, the max positive code: there is no NaN code, and +max is
//     what NVIDIA's satfinite conversions produce for E2M1. Callers that care must reject NaN
//     before quantizing.
namespace engine {

// The format of a 4-bit tensor. The numeric values are those of model::Fp4Format
// (model/fp4_weights.h), which the engine static_casts to this enum; kernels must not include
// model/ headers. Keep them in sync: static_assert(int(Fp4Kind::kE3M0) == int(Fp4Format::kE3M0))
// where both are visible.
enum class Fp4Kind : uint8_t { kE2M1 = 0, kE3M0 = 1, kE1M2 = 2 };
inline constexpr int kNumFp4Kinds = 3;

// True for the three defined kinds (validate values read from files before using them).
ENGINE_HOST_DEVICE constexpr bool IsValidFp4Kind(Fp4Kind kind) {
  return static_cast<uint8_t>(kind) < kNumFp4Kinds;
}

// ---- E3M0 -------------------------------------------------------------------------------------

// Thresholds are the midpoints; `<=` sends a tie down (to an even code), `<` sends it up.
ENGINE_HOST_DEVICE constexpr uint8_t EncodeE3M0(float x) {
  const uint32_t bits = fp4_internal::FloatBits(x);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return 0x7;  // NaN
  const uint8_t sign = static_cast<uint8_t>((bits >> 28) & 0x8u);
  const float a = fp4_internal::BitsToFloat(abs_bits);
  const uint8_t mag = a <= 0.125f  ? 0   // 0
                      : a < 0.375f ? 1   // 0.25
                      : a <= 0.75f ? 2   // 0.5
                      : a < 1.5f   ? 3   // 1
                      : a <= 3.0f  ? 4   // 2
                      : a < 6.0f   ? 5   // 4
                      : a <= 12.0f ? 6   // 8
                                   : 7;  // 16 (and everything larger, +Inf included)
  return static_cast<uint8_t>(sign | mag);
}

// ---- E1M2 -------------------------------------------------------------------------------------

ENGINE_HOST_DEVICE constexpr uint8_t EncodeE1M2(float x) {
  const uint32_t bits = fp4_internal::FloatBits(x);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return 0x7;  // NaN
  const uint8_t sign = static_cast<uint8_t>((bits >> 28) & 0x8u);
  const float a = fp4_internal::BitsToFloat(abs_bits);
  const uint8_t mag = a <= 0.125f   ? 0   // 0
                      : a < 0.375f  ? 1   // 0.25
                      : a <= 0.625f ? 2   // 0.5
                      : a < 0.875f  ? 3   // 0.75
                      : a <= 1.125f ? 4   // 1
                      : a < 1.375f  ? 5   // 1.25
                      : a <= 1.625f ? 6   // 1.5
                                    : 7;  // 1.75 (and everything larger, +Inf included)
  return static_cast<uint8_t>(sign | mag);
}

// ---- Run-time kind ----------------------------------------------------------------------------

namespace fp4_internal {

// |Int| of magnitude code 0..7 (only the low 3 bits are read).
ENGINE_HOST_DEVICE constexpr int IntMagnitude(Fp4Kind kind, uint8_t code) {
  const int c = code & 0x7;
  switch (kind) {
    case Fp4Kind::kE3M0:
      return c == 0 ? 0 : 1 << (c - 1);  // 4 * 2^(c-3)
    case Fp4Kind::kE1M2:
      return c;  // 4 * (c / 4)
    case Fp4Kind::kE2M1:
    default:
      return DoubledMagnitude(static_cast<uint8_t>(c));
  }
}

}  // namespace fp4_internal

// Magnitude * IntScale: 2 for E2M1, 4 for E3M0 and E1M2.
ENGINE_HOST_DEVICE constexpr int Fp4IntScale(Fp4Kind kind) {
  return kind == Fp4Kind::kE2M1 ? 2 : 4;
}
// Largest |Int(code)|: 12, 64, 7.
ENGINE_HOST_DEVICE constexpr int Fp4IntMax(Fp4Kind kind) {
  return kind == Fp4Kind::kE2M1 ? 12 : kind == Fp4Kind::kE3M0 ? 64 : 7;
}
// Largest finite magnitude: 6, 16, 1.75.
ENGINE_HOST_DEVICE constexpr float Fp4MaxMagnitude(Fp4Kind kind) {
  return kind == Fp4Kind::kE2M1 ? 6.0f : kind == Fp4Kind::kE3M0 ? 16.0f : 1.75f;
}

// float -> code (low nibble) under the encoding rules above. An invalid kind encodes as E2M1.
ENGINE_HOST_DEVICE constexpr uint8_t Fp4Encode(Fp4Kind kind, float x) {
  switch (kind) {
    case Fp4Kind::kE3M0:
      return EncodeE3M0(x);
    case Fp4Kind::kE1M2:
      return EncodeE1M2(x);
    case Fp4Kind::kE2M1:
    default:
      return EncodeE2M1(x);
  }
}

// Signed exact integer value of a code: Decode(code) * IntScale. Only the low nibble is read;
// both zeros give 0.
ENGINE_HOST_DEVICE constexpr int8_t Fp4Int(Fp4Kind kind, uint8_t code) {
  const int mag = fp4_internal::IntMagnitude(kind, code);
  return static_cast<int8_t>((code & 0x8) ? -mag : mag);
}

// code -> float, exactly (every value is a float; Int / IntScale is exact, a power-of-two
// divisor). Code 0x8 decodes to -0.0f.
ENGINE_HOST_DEVICE constexpr float Fp4Decode(Fp4Kind kind, uint8_t code) {
  const float mag = static_cast<float>(fp4_internal::IntMagnitude(kind, code)) /
                    static_cast<float>(Fp4IntScale(kind));
  return (code & 0x8) ? -mag : mag;
}

// Per-format decoders for symmetry with DecodeE2M1.
ENGINE_HOST_DEVICE constexpr float DecodeE3M0(uint8_t code) {
  return Fp4Decode(Fp4Kind::kE3M0, code);
}
ENGINE_HOST_DEVICE constexpr float DecodeE1M2(uint8_t code) {
  return Fp4Decode(Fp4Kind::kE1M2, code);
}

// Int of each of the 16 codes per kind, for host SIMD byte shuffles (pshufb). Host only: device
// code calls Fp4Int. Indexed [static_cast<int>(kind)][code].
inline constexpr int8_t kFp4IntTable[kNumFp4Kinds][16] = {
    {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12},           // E2M1
    {0, 1, 2, 4, 8, 16, 32, 64, 0, -1, -2, -4, -8, -16, -32, -64},       // E3M0
    {0, 1, 2, 3, 4, 5, 6, 7, 0, -1, -2, -3, -4, -5, -6, -7},             // E1M2
};

// ---- Compile-time checks ----------------------------------------------------------------------
namespace fp4_internal {

constexpr bool AllKindsConsistent() {  // host only: reads the host table
  for (int k = 0; k < kNumFp4Kinds; ++k) {
    const auto kind = static_cast<Fp4Kind>(k);
    for (int code = 0; code < 16; ++code) {
      const auto c = static_cast<uint8_t>(code);
      if (Fp4Encode(kind, Fp4Decode(kind, c)) != c) return false;
      if (Fp4Int(kind, c) != kFp4IntTable[k][code]) return false;
      if (Fp4Decode(kind, c) * static_cast<float>(Fp4IntScale(kind)) !=
          static_cast<float>(Fp4Int(kind, c))) {
        return false;
      }
    }
    if (Fp4Int(kind, 0x7) != Fp4IntMax(kind)) return false;
    if (Fp4Decode(kind, 0x7) != Fp4MaxMagnitude(kind)) return false;
  }
  return true;
}

}  // namespace fp4_internal

static_assert(fp4_internal::AllKindsConsistent());
static_assert(DecodeE3M0(0x1) == 0.25f && DecodeE3M0(0x7) == 16.0f && DecodeE3M0(0xC) == -2.0f);
static_assert(DecodeE1M2(0x3) == 0.75f && DecodeE1M2(0x7) == 1.75f && DecodeE1M2(0xD) == -1.25f);
static_assert(Fp4Decode(Fp4Kind::kE2M1, 0x5) == DecodeE2M1(0x5));
static_assert(EncodeE3M0(3.0f) == 0x4 && EncodeE3M0(6.0f) == 0x6 && EncodeE3M0(1e30f) == 0x7);
static_assert(EncodeE1M2(0.625f) == 0x2 && EncodeE1M2(0.875f) == 0x4 && EncodeE1M2(-9.f) == 0xF);
// The W4A4 kernels rely on these: biased activations Int + kIntMax fit in a uint8 (<= 128) and
// weights fit in an int8 (|w| <= 64).
static_assert(2 * Fp4IntMax(Fp4Kind::kE3M0) <= 255 && Fp4IntMax(Fp4Kind::kE3M0) <= 127);

}  // namespace engine

#endif  // FP4LM_KERNELS_CORE_FP4_FORMAT_H_
