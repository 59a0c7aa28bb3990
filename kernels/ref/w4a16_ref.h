// Scalar reference of W4A16: the FP4 weights of W4A4 (same codes, same per-row scales) times
// FP32 activations. The truth that the fast kernel (kernels/cpu/w4a16_gemm.h) is tested against
// with a summation-length tolerance (its float sums run in another order).
#ifndef FP4LM_KERNELS_REF_W4A16_REF_H_
#define FP4LM_KERNELS_REF_W4A16_REF_H_

#include <cstdint>

#include "kernels/core/fp4_format.h"

namespace engine::kernels {

// y[i, j] = row_scale[j] * sum_k Fp4Decode(kind, code(w[j, k])) * x[i, k] (+ bias[j]), codes in
// the canonical packing of model/fp4_weights.h (codes [n, k/2], element t of a row in byte t/2,
// low nibble first — see E2M1At in kernels/core/fp4.h), accumulated in double then rounded to
// float; when accumulate is true the float result is added to the old y (y = y_old + value).
// x: [m, k], row_scale: [n], bias: [n] or null, y: [m, n]; k even.
void W4A16LinearRef(const float* x, const uint8_t* codes, const float* row_scale,
                    const float* bias, Fp4Kind kind, int64_t m, int64_t n, int64_t k,
                    bool accumulate, float* y);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_REF_W4A16_REF_H_
