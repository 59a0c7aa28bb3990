// GPTQ (Frantar et al., 2022): quantizes a weight matrix one input column at a time and
// spreads each column's rounding error over the columns not yet quantized, weighted by the
// inverse Hessian of the layer's squared output error, H = 2 X^T X over calibration inputs X.
// LLM-FP4 and MergeQuant round weights to nearest; adding GPTQ's error compensation on top of
// their formats, clipping and folding is fp4lm's addition (`--no-gptq` turns it off).
#ifndef FP4LM_QUANTIZER_GPTQ_H_
#define FP4LM_QUANTIZER_GPTQ_H_

#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "quantizer/fp4_quant.h"

namespace engine::quantizer {

// The inverse-Hessian factor GPTQ needs, computed once per input and shared by every linear
// that reads it (q/k/v, gate/up).
struct GptqHessian {
  int64_t k = 0;
  std::vector<double> u;  // [k, k] upper Cholesky factor of (H + damp I)^-1, row-major
};

// X: [rows, k] calibration inputs of the linear (after folding). Dampening adds 1% of the mean
// diagonal, as GPTQ does; columns that are always zero are handled like GPTQ's dead columns.
GptqHessian ComputeGptqHessian(kernels::ThreadPool& pool, const float* x, int64_t rows,
                               int64_t k);

// Re-quantizes `q` (whose format and row scales the search chose) from the weights w [n, k]
// with GPTQ's error compensation. Row scales are kept; codes are replaced.
void GptqRequantize(kernels::ThreadPool& pool, const float* w, const GptqHessian& hessian,
                    QuantizedMatrix& q);

}  // namespace engine::quantizer

#endif  // FP4LM_QUANTIZER_GPTQ_H_
