// Host-side FP32 weights of a Llama-family model, as every reader returns them.
//
// Conventions (one for all formats):
//   * Shapes are outermost-first; the last dimension is contiguous.
//   * A linear layer's weight is [out_features, in_features] (PyTorch / ggml row order), so
//     y[n] = sum_k W[n, k] * x[k].
//   * Q and K rows are in the order the model's RopeStyle expects (model/config.h): readers
//     never permute, they record the style of their format instead.
// Weights are immutable once loaded. Their storage is either a memory mapping of the model file
// (F32 tensors read in place) or a buffer owned here (dequantized / converted tensors).
#ifndef FP4LM_MODEL_WEIGHTS_H_
#define FP4LM_MODEL_WEIGHTS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/fp4_weights.h"
#include "model/mapped_file.h"

namespace engine::model {

// A read-only view of a contiguous FP32 host tensor.
struct F32Tensor {
  const float* data = nullptr;
  std::vector<int64_t> shape;  // outermost-first; empty = absent (e.g. no bias)

  bool empty() const { return data == nullptr; }
  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return shape.empty() ? 0 : n;
  }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
};

struct LayerWeights {
  F32Tensor attn_norm;  // [model_dim]
  F32Tensor wq;         // [n_heads * head_dim, model_dim]
  F32Tensor wk;         // [n_kv_heads * head_dim, model_dim]
  F32Tensor wv;         // [n_kv_heads * head_dim, model_dim]
  F32Tensor bq;         // [n_heads * head_dim] or empty
  F32Tensor bk;         // [n_kv_heads * head_dim] or empty
  F32Tensor bv;         // [n_kv_heads * head_dim] or empty
  F32Tensor wo;         // [model_dim, n_heads * head_dim]
  F32Tensor ffn_norm;   // [model_dim]
  F32Tensor w_gate;     // [ffn_dim, model_dim]
  F32Tensor w_up;       // [ffn_dim, model_dim]
  F32Tensor w_down;     // [model_dim, ffn_dim]
};

struct ModelWeights {
  F32Tensor token_embedding;  // [vocab_size, model_dim]
  std::vector<LayerWeights> layers;
  F32Tensor final_norm;       // [model_dim]
  F32Tensor output;           // [vocab_size, model_dim]; aliases token_embedding when tied
  // W4A4 models only: the quantized linears. When not empty, the engine runs every q/k/v/o/
  // gate/up/down in W4A4 from these, and the FP32 linears of `layers` are absent (empty).
  Fp4ModelWeights fp4;

  // Takes ownership of a converted buffer and returns a view of it. The buffer's address is
  // stable: moving ModelWeights moves the vector of buffers, not their heap storage.
  F32Tensor Own(std::vector<float> values, std::vector<int64_t> shape);
  const float* OwnFloats(std::vector<float> values);
  const uint8_t* OwnBytes(std::vector<uint8_t> bytes);
  // Keeps a mapping alive for tensors that point into it.
  void KeepAlive(std::shared_ptr<const MappedFile> file) { mappings_.push_back(std::move(file)); }

  // Checks that every tensor is present with the shape `config` implies (for a W4A4 model: the
  // FP32 parts plus fp4.Validate). `source` names the file in error messages.
  absl::Status Validate(const ModelConfig& config, const std::string& source) const;

 private:
  std::vector<std::vector<float>> owned_;
  std::vector<std::vector<uint8_t>> owned_bytes_;
  std::vector<std::shared_ptr<const MappedFile>> mappings_;
};

}  // namespace engine::model

#endif  // FP4LM_MODEL_WEIGHTS_H_
