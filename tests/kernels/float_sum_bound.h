// The error bound the float GEMM tests (MatMulF32, MatMulF16, W4A16Gemm) check against their
// float64 references. A float sum of k terms in any order (SIMD lanes, k blocks, horizontal
// reductions; FMA or not) is within gamma_k * sum|terms| of the exact sum, gamma_k =
// k u / (1 - k u), u = FLT_EPSILON / 2; each later rounding (to float, the bias add, a scale, the
// residual add) costs one u of its result. kC = 1 (instead of 1/2) leaves a factor 2 for the
// denominator; a wrong index or a missed tail gives errors of order |x w|, far above it.
#ifndef FP4LM_TESTS_KERNELS_FLOAT_SUM_BOUND_H_
#define FP4LM_TESTS_KERNELS_FLOAT_SUM_BOUND_H_

#include <cfloat>
#include <cstdint>

namespace engine::kernels {

// |got - want| allowed for a dot product of length k whose terms sum to `sum_abs_terms` in
// magnitude, followed by roundings of results of magnitude up to `epilogue_magnitude`.
inline double FloatSumTolerance(int64_t k, double sum_abs_terms, double epilogue_magnitude) {
  constexpr double kC = 1.0;
  return kC * static_cast<double>(k) * FLT_EPSILON * sum_abs_terms +
         2 * FLT_EPSILON * epilogue_magnitude;
}

}  // namespace engine::kernels

#endif  // FP4LM_TESTS_KERNELS_FLOAT_SUM_BOUND_H_
