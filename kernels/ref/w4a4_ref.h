// Scalar references of W4A4 (FP4 weights x FP4 activations, static per-tensor activation scale):
// activation quantization and the FP4 linear. The single truth that the fast CPU kernels
// (kernels/cpu/fp4_gemm.h) and the CUDA kernels reproduce BIT FOR BIT, so every float operation
// and its order is part of the definition below.
#ifndef FP4LM_KERNELS_REF_W4A4_REF_H_
#define FP4LM_KERNELS_REF_W4A4_REF_H_

#include <cstdint>

#include "kernels/core/fp4_format.h"

namespace engine::kernels {

// The largest in_features (k) for which the int32 accumulation of a W4A4 dot product is exact
// whatever the formats: |Int(a) * Int(w)| <= 64 * 64 = 2^12, so |sum| <= 2^12 * k < 2^31 needs
// k < 2^19. Fast kernels may have a smaller limit (see kernels/cpu/fp4_gemm.h).
inline constexpr int64_t kW4A4MaxK = (int64_t{1} << 19) - 1;

// codes[i, j/2] (packed, element j in the low nibble when j is even) =
//   Fp4Encode(kind, x[i, j] * inv_scale)
// for x: [m, k] (k even), codes: [m, k / 2]. The product x * inv_scale, rounded to float, IS
// the definition (inv_scale = 1 / a_scale, computed once by the caller): a fused producer
// (RMSNorm + quantize, SiLU*up + quantize) must compute exactly that float product, not
// x / a_scale, to produce the same codes.
void QuantizeActivationsRef(const float* x, int64_t m, int64_t k, Fp4Kind kind, float inv_scale,
                            uint8_t* codes);

// One W4A4 linear, y[m, n] = dequant(a) . dequant(w)^T * scales (+ bias).
struct Fp4LinearArgs {
  const uint8_t* a_codes = nullptr;  // [m, k / 2] packed activation codes
  Fp4Kind a_kind = Fp4Kind::kE2M1;
  float a_scale = 1.0f;              // activation = a_scale * Decode(a_kind, code)
  const uint8_t* w_codes = nullptr;  // [n, k / 2] packed weight codes (canonical layout)
  Fp4Kind w_kind = Fp4Kind::kE2M1;
  const float* row_scale = nullptr;  // [n]: weight row i = row_scale[i] * Decode(w_kind, code)
  const float* bias = nullptr;       // [n] or null
  int64_t m = 0;
  int64_t n = 0;
  int64_t k = 0;                     // even, 0 < k <= kW4A4MaxK
  float* y = nullptr;                // [m, n]
  bool accumulate = false;           // y += result instead of y = result
};

// For every (i, j), exactly:
//   int32_t acc = sum_t Fp4Int(a_kind, a[i, t]) * Fp4Int(w_kind, w[j, t])     (exact)
//   float v = static_cast<float>(acc)                        // round to nearest even if
//                                                            // |acc| > 2^24
//   v = v * (1.0f / (Fp4IntScale(a_kind) * Fp4IntScale(w_kind)))   // a power of two: exact
//                                                                   // unless v underflows
//   v = v * a_scale;
//   v = v * row_scale[j];
//   if (bias)       v = v + bias[j];
//   if (accumulate) y[i, j] = y[i, j] + v;  else  y[i, j] = v;
// each step one IEEE float operation (round to nearest even, no FMA contraction: w4a4_ref.cc
// and the fast kernels are compiled with -ffp-contract=off), evaluated left to right as written.
// So `accumulate` computes y_old + ((((acc * c) * a_scale) * row_scale) + bias), which is how
// the engine adds a linear's output to the residual stream.
void Fp4LinearRef(const Fp4LinearArgs& args);

// The epilogue above for one output, shared by the reference and the scalar paths of the fast
// kernels (SIMD paths apply the same operations lane-wise). `c` is W4A4IntScaleInverse(...),
// `bias_j` and `y_old` may be null. Out of line on purpose: an inline copy compiled in a
// translation unit with -ffp-contract=fast could fuse the multiply and the add into an FMA.
float W4A4Epilogue(int32_t acc, float c, float a_scale, float row_scale, const float* bias_j,
                   const float* y_old);

// 1.0f / (IntScale_a * IntScale_w), the exact power of two of the epilogue.
inline float W4A4IntScaleInverse(Fp4Kind a_kind, Fp4Kind w_kind) {
  return 1.0f / static_cast<float>(Fp4IntScale(a_kind) * Fp4IntScale(w_kind));
}

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_REF_W4A4_REF_H_
