// IEEE binary16 and bfloat16 <-> float32 conversions, exact and branch-light, usable on host
// and device. Used by the readers (F16/BF16 tensors, GGUF block scales) and the F16 baselines.
#ifndef FP4LM_KERNELS_CORE_HALF_H_
#define FP4LM_KERNELS_CORE_HALF_H_

#include <bit>
#include <cstdint>

namespace engine {

// bfloat16 is the top half of a float32: widening is a shift.
constexpr float Bf16ToF32(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

// Round to nearest even; NaN stays NaN (quiet bit forced so truncation cannot make it Inf).
constexpr uint16_t F32ToBf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

// binary16 -> binary32, exact for every input including subnormals, Inf and NaN.
constexpr float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // Inf / NaN
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return std::bit_cast<float>(sign);
    // Subnormal: normalize by shifting the mantissa up until its implicit bit appears.
    int32_t e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    mantissa &= 0x3ffu;
    return std::bit_cast<float>(sign | static_cast<uint32_t>(127 - 15 - e) << 23 |
                                (mantissa << 13));
  }
  return std::bit_cast<float>(sign | (exponent + (127 - 15)) << 23 | (mantissa << 13));
}

// binary32 -> binary16, round to nearest even, overflow to Inf, NaN preserved as quiet NaN.
constexpr uint16_t F32ToF16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;          // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;         // rounds to >= 65536: Inf
  if (abs < 0x38800000u) {                               // result is subnormal or zero
    if (abs < 0x33000000u) return sign;                  // below half the smallest subnormal
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;               // 14..24
    const uint32_t half_ulp = 1u << (shift - 1);
    uint32_t result = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    if (rest > half_ulp || (rest == half_ulp && (result & 1u))) ++result;
    return sign | static_cast<uint16_t>(result);
  }
  const uint32_t rebiased = abs - ((127u - 15u) << 23);
  uint32_t result = rebiased >> 13;
  const uint32_t rest = rebiased & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u))) ++result;
  return sign | static_cast<uint16_t>(result);
}

}  // namespace engine

#endif  // FP4LM_KERNELS_CORE_HALF_H_
