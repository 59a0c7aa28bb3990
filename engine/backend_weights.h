// The weights in the form the CPU kernels stream them, prepared once at load from the canonical
// model::ModelWeights (the file keeps its layout): W4A4 linears repacked for the exact FP4 GEMM,
// the output head of W4A4 models as int8 rows, and — for the baselines of `fp4lm bench` —
// linears held in F16 or as FP4 weights with FP32 activations (W4A16).
#ifndef FP4LM_ENGINE_BACKEND_WEIGHTS_H_
#define FP4LM_ENGINE_BACKEND_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

namespace engine {

// One linear layer multiplied by FP32 activations: y[m, n] = x[m, k] . W^T (+ bias).
struct DenseLinear {
  enum class Type : uint8_t { kF32, kF16, kI8, kW4A16 };
  Type type = Type::kF32;
  int64_t n = 0;  // out features
  int64_t k = 0;  // in features
  const float* f32 = nullptr;                        // kF32: [n, k]
  const uint16_t* f16 = nullptr;                     // kF16: [n, k] IEEE binary16
  const int8_t* i8 = nullptr;                        // kI8: [n, k] ...
  const float* i8_scale = nullptr;                   // ... times these [n] row scales
  const kernels::PreparedFp4Weight* fp4 = nullptr;   // kW4A16 (carries its row scales)

  // Bytes a pass over the weights reads (what one decode step streams).
  int64_t bytes() const;
};
const char* DenseLinearTypeName(DenseLinear::Type type);  // "f32", "f16", "i8", "w4a16"

// y [m, n] = x . W^T (+ bias) through the kernel of w's type.
void DenseLinearForward(kernels::ThreadPool& pool, const float* x, const DenseLinear& w,
                        const float* bias, float* y, int64_t m);

struct DenseLayer {
  DenseLinear wq, wk, wv, wo, w_gate, w_up, w_down;
};

// A W4A4 layer's linears repacked for the CPU kernels.
struct Fp4PreparedLayer {
  kernels::PreparedFp4Weight wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Symmetric int8 rows (ConvertToI8Rows): scale[j] = max_t |w[j, t]| / 127 and q[j, t] =
// round-to-nearest-even(w[j, t] / scale[j]) in [-127, 127]; a row of zeros gets scale 0.
struct I8Rows {
  std::unique_ptr<int8_t[]> q;     // [n, k]
  std::unique_ptr<float[]> scale;  // [n]
};

struct BackendWeights {
  // W4A4 models: every q/k/v/o/gate/up/down (with the act quantizers of ModelWeights::fp4).
  std::vector<Fp4PreparedLayer> fp4;
  // Otherwise the linears the FP32 block loop multiplies; empty means the F32 tensors of
  // ModelWeights::layers.
  std::vector<DenseLayer> dense;
  // The output head: F32 ModelWeights::output unless replaced (int8 rows for W4A4 models).
  DenseLinear head;

  // Storage the views above point into (addresses stay stable when this struct moves).
  std::vector<std::unique_ptr<uint16_t[]>> f16_storage;
  std::vector<std::unique_ptr<int8_t[]>> i8_storage;
  std::vector<std::unique_ptr<float[]>> scale_storage;
  std::vector<std::unique_ptr<kernels::PreparedFp4Weight>> fp4_storage;

  // Takes ownership of F16 weights [n, k] / of int8 rows [n, k] with their scales [n] / of a
  // prepared FP4 weight; returns the view.
  DenseLinear AddF16(std::unique_ptr<uint16_t[]> values, int64_t n, int64_t k);
  DenseLinear AddI8(I8Rows rows, int64_t n, int64_t k);
  DenseLinear AddW4A16(kernels::PreparedFp4Weight weight);
};

// What a loaded model runs with: W4A4 models get their FP4 linears repacked and an int8 head
// with one scale per row (a quarter of the F32 bytes a decode step reads for it, at a KL
// divergence from the F16 head far below W4A4's own; README "W4A4"); FP32 models run as stored.
absl::StatusOr<BackendWeights> PrepareBackendWeights(const model::ModelConfig& config,
                                                     const model::ModelWeights& weights);

// FP32 -> F16 (round to nearest even) of n values: the conversion the F16 paths use.
std::unique_ptr<uint16_t[]> ConvertToF16(const float* values, int64_t n);

// FP32 -> I8Rows of w [n, k]. Errors (naming `name`): a non-finite weight.
absl::StatusOr<I8Rows> ConvertToI8Rows(const float* w, int64_t n, int64_t k,
                                       const std::string& name);

}  // namespace engine

#endif  // FP4LM_ENGINE_BACKEND_WEIGHTS_H_
