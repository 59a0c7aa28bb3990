// LLM-FP4's search: for each linear, the FP4 format and per-output-channel clipping of the
// weights; for each linear input, the format and clipping range of its static per-tensor
// activation quantizer — each chosen to minimize the error it causes on calibration data.
#ifndef FP4LM_QUANTIZER_FORMAT_SEARCH_H_
#define FP4LM_QUANTIZER_FORMAT_SEARCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/core/fp4_format.h"
#include "kernels/cpu/thread_pool.h"
#include "quantizer/fp4_quant.h"

namespace engine::quantizer {

// Candidate clip ratios (of a row's or a tensor's max |value|), largest first; 1 = min-max.
inline constexpr float kWeightClipRatios[] = {1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f, 0.7f, 0.65f, 0.6f};
inline constexpr float kActClipRatios[] = {1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.25f, 0.2f};

struct WeightSearchResult {
  QuantizedMatrix quantized;
  double relative_error = 0.0;  // importance-weighted squared error / weighted energy
  float mean_clip_ratio = 1.0f;
};

// For each format in `formats`, each row's clip ratio minimizing WeightedRowError; then the
// format with the least total. With search_clip = false, rows use min-max (ratio 1).
WeightSearchResult SearchWeightQuantization(kernels::ThreadPool& pool, const float* w, int64_t n,
                                            int64_t k, std::span<const Fp4Kind> formats,
                                            std::span<const float> importance, bool search_clip);

// One consumer of a quantized activation: its full-precision (folded) weight and the
// dequantized FP4 weight the engine will run.
struct Consumer {
  const float* w_full = nullptr;       // [n, k]
  const float* w_quantized = nullptr;  // [n, k]
  int64_t n = 0;
};

struct ActSearchResult {
  Fp4Kind kind = Fp4Kind::kE2M1;
  float scale = 1.0f;
  float clip_ratio = 1.0f;
  double relative_error = 0.0;  // sum ||fq(X) Wq^T - X W^T||^2 / sum ||X W^T||^2
};

// Chooses the format and clip ratio (of `absmax`) of the static activation quantizer of x
// ([rows, k], the calibration sample) minimizing the consumers' output error.
ActSearchResult SearchActivationQuantization(kernels::ThreadPool& pool, const float* x,
                                             int64_t rows, int64_t k, float absmax,
                                             std::span<const Consumer> consumers,
                                             std::span<const Fp4Kind> formats, bool search_clip);

}  // namespace engine::quantizer

#endif  // FP4LM_QUANTIZER_FORMAT_SEARCH_H_
