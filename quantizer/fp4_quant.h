// The quantizer's FP4 building blocks: weight rows to codes + row scales, dequantization, and
// fake-quantized activations, all through the one codec of kernels/core/fp4_format.h so that
// what the search measures is exactly what the engine later computes.
#ifndef FP4LM_QUANTIZER_FP4_QUANT_H_
#define FP4LM_QUANTIZER_FP4_QUANT_H_

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/core/fp4_format.h"

namespace engine::quantizer {

// The canonical FP4 form of a weight matrix [n, k] (model/fp4_weights.h).
struct QuantizedMatrix {
  Fp4Kind kind = Fp4Kind::kE2M1;
  int64_t n = 0, k = 0;
  std::vector<uint8_t> codes;     // [n, k / 2], low nibble = even k
  std::vector<float> row_scale;   // [n]
};

// Quantizes each row n of w with row_scale[n] = clip[n] / max magnitude of `kind` (a row whose
// clip is 0 gets scale 1 and all-zero codes). Codes are Encode(w * (1 / row_scale)).
QuantizedMatrix QuantizeRows(const float* w, int64_t n, int64_t k, Fp4Kind kind,
                             std::span<const float> clip);

// w ~= dec(codes) * row_scale, [n, k].
std::vector<float> Dequantize(const QuantizedMatrix& q);

// The value the engine sees for x after static quantization with `scale`:
// Decode(Encode(x * (1 / scale))) * scale, written to out (may alias x).
void FakeQuantize(const float* x, int64_t count, Fp4Kind kind, float scale, float* out);

// Squared error of quantizing one row with clip `clip`, each element weighted by
// importance[k] (mean x_k^2 of the activations it multiplies): the diagonal-Hessian proxy of the
// row's output error used by the weight clipping search.
double WeightedRowError(const float* row, int64_t k, Fp4Kind kind, float clip,
                        const float* importance);

}  // namespace engine::quantizer

#endif  // FP4LM_QUANTIZER_FP4_QUANT_H_
