// The hyperparameters of a decoder-only Llama-family model, independent of the file format it
// came from. Every reader fills one of these and calls Validate() before trusting it.
#ifndef FP4LM_MODEL_CONFIG_H_
#define FP4LM_MODEL_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace engine::model {

// How RoPE pairs the elements of a head. llama2.c checkpoints and GGUF llama files (whose Q/K
// rows llama.cpp's converter permuted) rotate interleaved pairs (2i, 2i+1); Hugging Face
// checkpoints rotate halves (i, i + head_dim/2).
enum class RopeStyle : uint8_t { kInterleaved, kHalves };

const char* RopeStyleName(RopeStyle style);

// Upper bounds that keep a hostile file from asking for absurd allocations. Far above any
// model fp4lm targets; a real model past them is a clear error, not a crash.
inline constexpr int64_t kMaxModelDim = 1 << 16;
inline constexpr int64_t kMaxLayers = 1024;
inline constexpr int64_t kMaxHeads = 1024;
inline constexpr int64_t kMaxVocab = 1 << 22;
inline constexpr int64_t kMaxSeqLen = 1 << 22;

struct ModelConfig {
  std::string architecture = "llama";  // "llama", "mistral", "qwen2"
  int32_t model_dim = 0;               // residual stream width
  int32_t ffn_dim = 0;                 // SwiGLU hidden width
  int32_t n_layers = 0;
  int32_t n_heads = 0;                 // query heads
  int32_t n_kv_heads = 0;              // key/value heads (grouped-query attention)
  int32_t head_dim = 0;                // usually model_dim / n_heads
  int32_t vocab_size = 0;
  int32_t max_seq_len = 0;             // context window the model was trained with
  float norm_eps = 1e-5f;              // RMSNorm epsilon
  float rope_theta = 10000.0f;         // RoPE base frequency
  RopeStyle rope_style = RopeStyle::kHalves;
  bool tied_embeddings = false;        // output head shares the token embedding
  bool qkv_bias = false;               // q/k/v projections have biases (Qwen2)

  int32_t q_dim() const { return n_heads * head_dim; }
  int32_t kv_dim() const { return n_kv_heads * head_dim; }

  // Checks positivity, divisibility (n_heads % n_kv_heads, even head_dim) and the bounds above.
  // `source` names the file in the error message.
  absl::Status Validate(const std::string& source) const;

  // Weights of one decoder layer's linears (wq, wk, wv, wo, gate, up, down): also the
  // multiply-adds they cost per token.
  int64_t LinearWeightsPerLayer() const;
  // Parameters counted once (a tied head is not counted twice).
  int64_t ParameterCount() const;
};

}  // namespace engine::model

#endif  // FP4LM_MODEL_CONFIG_H_
