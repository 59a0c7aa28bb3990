// The FP32 forward pass of a pre-norm Llama-family decoder (Llama, Mistral, Qwen2): RMSNorm,
// RoPE, grouped-query attention over the KV cache, SwiGLU, tied or untied head. It reads like
// llama2.c's forward(): one named step per statement, shapes in comments, all state passed in.
#ifndef FP4LM_ENGINE_TRANSFORMER_H_
#define FP4LM_ENGINE_TRANSFORMER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/backend_weights.h"
#include "engine/kv_cache.h"
#include "engine/observer.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

namespace engine {

// Tokens per forward call: a longer prefill runs in chunks of this size, bounding the scratch
// memory (and the [m, vocab] logits when every position's logits are wanted).
inline constexpr int32_t kMaxBatchTokens = 256;

// Scratch activations for a batch of up to `capacity` tokens (llama2.c's RunState).
struct ForwardBuffers {
  int64_t capacity = 0;
  std::vector<float> x;        // [m, model_dim]   residual stream
  std::vector<float> xn;       // [m, model_dim]   normalized
  std::vector<float> q;        // [m, n_heads * head_dim]
  std::vector<float> k;        // [m, n_kv_heads * head_dim]
  std::vector<float> v;        // [m, n_kv_heads * head_dim]
  std::vector<float> att;      // [m, n_heads * head_dim] attention output
  std::vector<float> proj;     // [m, model_dim]   o_proj / down_proj output
  std::vector<float> gate;     // [m, ffn_dim]
  std::vector<float> up;       // [m, ffn_dim]
  std::vector<int32_t> positions;  // [m]
  kernels::RopeTable rope;
  // W4A4 models only.
  std::vector<uint8_t> codes;  // [m, max(model_dim, q_dim, ffn_dim) / 2] FP4 activation codes
  kernels::Fp4GemmScratch gemm_scratch;

  void Reserve(const model::ModelConfig& config, int64_t m);
};

struct ForwardArgs {
  const model::ModelConfig* config = nullptr;
  const model::ModelWeights* weights = nullptr;
  // The weights as the kernels stream them (engine/backend_weights.h); null runs every linear
  // and the head from the F32 tensors of `weights`.
  const BackendWeights* backend = nullptr;
  std::span<const int32_t> tokens;      // [m], ids already validated, m <= kMaxBatchTokens
  bool all_logits = false;              // logits for every position, else the last only
  float* logits = nullptr;              // [m, vocab] or [vocab]
  ActivationObserver* observer = nullptr;  // optional
};

// Runs args.tokens at positions kv.size() ... kv.size() + m - 1, writes their keys and values
// into the cache and grows it by m. The caller checked that m tokens fit. W4A4 models
// (args.backend->fp4 set) run every linear in W4A4 (engine/transformer_w4a4.cc).
void Forward(const ForwardArgs& args, KvCache& kv, kernels::ThreadPool& pool,
             ForwardBuffers& buffers);

// Pieces shared by the FP32 and W4A4 block loops.
namespace transformer_internal {
// x [m, d] = embedding rows; positions and the RoPE table for the batch.
void Embed(const ForwardArgs& args, const KvCache& kv, ForwardBuffers& b);
// Copies the new tokens' K and V rows ([m, kv_dim]) into the cache at their positions.
void WriteKv(const ForwardBuffers& b, int64_t m, const model::ModelConfig& c, KvCache& kv,
             int32_t layer);
// Final norm and output head for the rows whose logits are wanted.
void Head(const ForwardArgs& args, kernels::ThreadPool& pool, ForwardBuffers& b, int64_t m);
// The W4A4 layer loop.
void RunW4A4Layers(const ForwardArgs& args, KvCache& kv, kernels::ThreadPool& pool,
                   ForwardBuffers& b, int64_t m);
}  // namespace transformer_internal

}  // namespace engine

#endif  // FP4LM_ENGINE_TRANSFORMER_H_
