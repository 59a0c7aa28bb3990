// FP4 E2M1 codec: the one definition of the 4-bit number format that the quantizer, the readers,
// the reference kernels and every backend (CPU SIMD, CUDA) share. Compiles as C++17 under nvcc
// and C++20 on the host, so it uses no std:: math (std::signbit/fabs are not device functions).
#ifndef FP4LM_KERNELS_CORE_FP4_H_
#define FP4LM_KERNELS_CORE_FP4_H_

#include <cstdint>

#include "kernels/core/host_device.h"

// FP4 E2M1 (OCP Microscaling spec): 1 sign, 2 exponent (bias 1), 1 mantissa bit. No Inf, no NaN.
//
//   bit    3    2    1    0
//        +----+---------+----+
//        | s  |  e  e   | m  |        magnitude(e, m) = e == 0 ? 0.5 * m
//        +----+---------+----+                                : (1 + 0.5 * m) * 2^(e - 1)
//
//   code   0    1    2    3    4    5    6    7        codes 8..15: the same, negated
//   value  0   0.5   1   1.5   2    3    4    6        (0x8 is -0.0)
//
// Doubled values {0,1,2,3,4,6,8,12} are small integers. That is why W4A4 can run exactly on
// int8 dot-product units (AVX512-VNNI, NEON dotprod, dp4a/IMMA): accumulate doubled codes in
// int32, multiply by 0.25 * scales once per output (same trick as ggml's kvalues_mxfp4).
//
// Packing: two codes per byte, element 2i in the LOW nibble, element 2i+1 in the HIGH nibble.
//
//   byte i   7 6 5 4 | 3 2 1 0
//           +--------+--------+
//           | x[2i+1]|  x[2i] |
//           +--------+--------+
//
// This is the order of cuda_fp4.h's __nv_cvt_float2_to_fp4x2 (float2.x in the low nibble),
// which tests/kernels/cuda_fp4_unpack_test.cc checks on a GPU, and of ggml's MXFP4 blocks.
//
// Encoding rules (EncodeE2M1):
//   - round to nearest; a tie goes to the code with mantissa bit 0 ("ties to even code");
//   - finite values and +-Inf beyond 6 saturate to +-6 (there is no Inf to overflow into);
//   - the sign is kept, also when the magnitude rounds to 0: -0.0 and -0.1 both give 0x8;
//   - NaN gives 0x7 (+6) whatever its sign bit. E2M1 has no NaN, so some finite code must be
//     chosen; +MAXNORM is what NVIDIA's satfinite conversion (cvt.rn.satfinite.e2m1x2.f32 and
//     the host emulation in cuda_fp4.hpp) produces, so host and device quantizers agree
//     bit-for-bit even on garbage. Callers that care must reject NaN before quantizing.
namespace engine {

// Largest finite magnitude.
inline constexpr float kE2M1Max = 6.0f;
// The code NaN encodes to (see "Encoding rules" above).
inline constexpr uint8_t kE2M1NanCode = 0x7;

namespace fp4_internal {

// __builtin_bit_cast is constexpr and works in GCC >= 11, Clang and nvcc device code alike;
// std::bit_cast is C++20-only and not a device function under nvcc's C++17.
ENGINE_HOST_DEVICE constexpr uint32_t FloatBits(float x) { return __builtin_bit_cast(uint32_t, x); }
ENGINE_HOST_DEVICE constexpr float BitsToFloat(uint32_t b) { return __builtin_bit_cast(float, b); }

// 2 * |value| of a code: e == 0 ? m : (2 + m) << (e - 1)  ->  {0, 1, 2, 3, 4, 6, 8, 12}.
ENGINE_HOST_DEVICE constexpr int DoubledMagnitude(uint8_t code) {
  const int e = (code >> 1) & 0x3;
  const int m = code & 0x1;
  return e == 0 ? m : (2 + m) << (e - 1);
}

}  // namespace fp4_internal

// float -> 4-bit code (in the low nibble; the high nibble is 0). The threshold chain IS the
// spec: each threshold is a midpoint between neighbouring values, and `<=` vs `<` says which
// side its tie goes to (the even code: 0.25->0, 0.75->1.0, 1.25->1.0, 1.75->2, 2.5->2,
// 3.5->4, 5->4).
ENGINE_HOST_DEVICE constexpr uint8_t EncodeE2M1(float x) {
  const uint32_t bits = fp4_internal::FloatBits(x);
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits > 0x7f800000u) return kE2M1NanCode;  // NaN: exponent all ones, mantissa != 0.
  const uint8_t sign = static_cast<uint8_t>((bits >> 28) & 0x8u);  // float bit 31 -> code bit 3
  const float a = fp4_internal::BitsToFloat(abs_bits);
  const uint8_t mag = a <= 0.25f  ? 0   // 0
                      : a < 0.75f ? 1   // 0.5
                      : a <= 1.25f ? 2  // 1
                      : a < 1.75f ? 3   // 1.5
                      : a <= 2.5f ? 4   // 2
                      : a < 3.5f  ? 5   // 3
                      : a <= 5.0f ? 6   // 4
                                  : 7;  // 6 (and everything larger, +Inf included)
  return static_cast<uint8_t>(sign | mag);
}

// 4-bit code -> float, exactly (every E2M1 value is a float). Only the low nibble is read.
// Code 0x8 decodes to -0.0f.
ENGINE_HOST_DEVICE constexpr float DecodeE2M1(uint8_t code) {
  const float mag = 0.5f * static_cast<float>(fp4_internal::DoubledMagnitude(code));
  return (code & 0x8) ? -mag : mag;
}

// 2 * DecodeE2M1(code) as an integer in [-12, 12]: the operand of the exact int8 dot-product
// path. Both zeros (0x0 and 0x8) give 0.
ENGINE_HOST_DEVICE constexpr int8_t DoubledE2M1(uint8_t code) {
  const int mag = fp4_internal::DoubledMagnitude(code);
  return static_cast<int8_t>((code & 0x8) ? -mag : mag);
}

// The same as a lookup table, for host SIMD byte shuffles (pshufb / vqtbl1q_s8). Host only:
// device code calls DoubledE2M1 (a host constexpr array is not addressable from a kernel).
inline constexpr int8_t kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12,
                                            0, -1, -2, -3, -4, -6, -8, -12};

// Two codes per byte. Element 2i is the LOW nibble, element 2i+1 the HIGH nibble.
ENGINE_HOST_DEVICE constexpr uint8_t PackE2M1x2(uint8_t even, uint8_t odd) {
  return static_cast<uint8_t>((even & 0xF) | ((odd & 0xF) << 4));
}
// Element 2i of a packed byte.
ENGINE_HOST_DEVICE constexpr uint8_t UnpackE2M1Low(uint8_t byte) {
  return static_cast<uint8_t>(byte & 0xF);
}
// Element 2i + 1 of a packed byte.
ENGINE_HOST_DEVICE constexpr uint8_t UnpackE2M1High(uint8_t byte) {
  return static_cast<uint8_t>(byte >> 4);
}
// Code of element i of a packed FP4 array (i >= 0; the caller checks bounds).
ENGINE_HOST_DEVICE constexpr uint8_t E2M1At(const uint8_t* packed, int64_t i) {
  const uint8_t byte = packed[i >> 1];
  return (i & 1) ? UnpackE2M1High(byte) : UnpackE2M1Low(byte);
}

// ---- Compile-time checks: the format facts above, verified by the compiler. -----------------
namespace fp4_internal {

constexpr bool AllCodesRoundTrip() {  // host only: reads the host table
  for (int code = 0; code < 16; ++code) {
    const auto c = static_cast<uint8_t>(code);
    if (EncodeE2M1(DecodeE2M1(c)) != c) return false;
    if (DoubledE2M1(c) != kE2M1Doubled[code]) return false;
    if (2.0f * DecodeE2M1(c) != static_cast<float>(DoubledE2M1(c))) return false;
  }
  return true;
}

}  // namespace fp4_internal

static_assert(DecodeE2M1(0x1) == 0.5f && DecodeE2M1(0x5) == 3.0f && DecodeE2M1(0x7) == 6.0f);
static_assert(DecodeE2M1(0xF) == -6.0f && DecodeE2M1(0xA) == -1.0f);
static_assert(fp4_internal::FloatBits(DecodeE2M1(0x8)) == 0x80000000u, "0x8 must be -0.0");
static_assert(fp4_internal::AllCodesRoundTrip());
static_assert(EncodeE2M1(0.25f) == 0x0 && EncodeE2M1(0.75f) == 0x2 && EncodeE2M1(1.75f) == 0x4);
static_assert(EncodeE2M1(-5.0f) == 0xE && EncodeE2M1(-0.0f) == 0x8 && EncodeE2M1(1e30f) == 0x7);
static_assert(PackE2M1x2(0x1, 0xF) == 0xF1 && UnpackE2M1Low(0xF1) == 0x1 &&
              UnpackE2M1High(0xF1) == 0xF);

}  // namespace engine

#endif  // FP4LM_KERNELS_CORE_FP4_H_
