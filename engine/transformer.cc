#include "engine/transformer.h"

#include <algorithm>
#include <cstring>

namespace engine {
namespace {

DenseLinear F32View(const model::F32Tensor& t) {
  return DenseLinear{.type = DenseLinear::Type::kF32, .n = t.dim(0), .k = t.dim(1), .f32 = t.data};
}

// The linears the FP32 block loop multiplies: the backend's (F16 / W4A16 baselines) or views
// of the model's F32 tensors.
DenseLayer LayerLinears(const ForwardArgs& args, int32_t l) {
  if (args.backend != nullptr && !args.backend->dense.empty()) return args.backend->dense[l];
  const model::LayerWeights& lw = args.weights->layers[l];
  return DenseLayer{.wq = F32View(lw.wq), .wk = F32View(lw.wk), .wv = F32View(lw.wv),
                    .wo = F32View(lw.wo), .w_gate = F32View(lw.w_gate),
                    .w_up = F32View(lw.w_up), .w_down = F32View(lw.w_down)};
}

void Observe(ActivationObserver* observer, int32_t layer, ActivationPoint point,
             const std::vector<float>& data, int64_t rows, int64_t cols) {
  if (observer != nullptr) observer->Observe(layer, point, data.data(), rows, cols);
}

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

void ForwardBuffers::Reserve(const model::ModelConfig& c, int64_t m) {
  if (m <= capacity) return;
  capacity = m;
  x.resize(m * c.model_dim);
  xn.resize(m * c.model_dim);
  q.resize(m * c.q_dim());
  k.resize(m * c.kv_dim());
  v.resize(m * c.kv_dim());
  att.resize(m * c.q_dim());
  proj.resize(m * c.model_dim);
  gate.resize(m * c.ffn_dim);
  up.resize(m * c.ffn_dim);
  positions.resize(m);
  codes.resize(m * std::max({c.model_dim, c.q_dim(), c.ffn_dim}) / 2);
}

void Forward(const ForwardArgs& args, KvCache& kv, kernels::ThreadPool& pool,
             ForwardBuffers& b) {
  const model::ModelConfig& c = *args.config;
  const model::ModelWeights& w = *args.weights;
  const int64_t m = static_cast<int64_t>(args.tokens.size());
  const int64_t d = c.model_dim, f = c.ffn_dim, qd = c.q_dim();
  const auto pairing = c.rope_style == model::RopeStyle::kInterleaved
                           ? kernels::RopePairing::kInterleaved
                           : kernels::RopePairing::kHalves;
  b.Reserve(c, m);
  transformer_internal::Embed(args, kv, b);
  if (args.backend != nullptr && !args.backend->fp4.empty()) {
    transformer_internal::RunW4A4Layers(args, kv, pool, b, m);
    kv.Grow(static_cast<int32_t>(m));
    transformer_internal::Head(args, pool, b, m);
    return;
  }
  const kernels::AttentionShape attention_shape{.m = m, .n_heads = c.n_heads,
                                                .n_kv_heads = c.n_kv_heads,
                                                .head_dim = c.head_dim,
                                                .capacity = kv.capacity()};
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const model::LayerWeights& lw = w.layers[l];
    const DenseLayer lin = LayerLinears(args, l);
    // --- attention ----------------------------------------------------------------------
    // xn = RMSNorm(x) * attn_norm                                        [m, d]
    kernels::RmsNorm(b.x.data(), lw.attn_norm.data, b.xn.data(), m, d, c.norm_eps);
    Observe(args.observer, l, ActivationPoint::kAttnInput, b.xn, m, d);
    // q, k, v projections (+ bias for Qwen2)                 [m, qd], [m, kvd], [m, kvd]
    DenseLinearForward(pool, b.xn.data(), lin.wq, lw.bq.data, b.q.data(), m);
    DenseLinearForward(pool, b.xn.data(), lin.wk, lw.bk.data, b.k.data(), m);
    DenseLinearForward(pool, b.xn.data(), lin.wv, lw.bv.data, b.v.data(), m);
    // RoPE on q and k, then k and v into the cache at positions [pos, pos + m)
    kernels::Rope(b.q.data(), b.rope, c.n_heads, c.head_dim, pairing);
    kernels::Rope(b.k.data(), b.rope, c.n_kv_heads, c.head_dim, pairing);
    transformer_internal::WriteKv(b, m, c, kv, l);
    // causal grouped-query attention over the cache                       [m, qd]
    kernels::Attention(pool, b.q.data(), kv.keys(l), kv.values(l), b.positions.data(),
                       b.att.data(), attention_shape);
    Observe(args.observer, l, ActivationPoint::kAttnOutput, b.att, m, qd);
    // x += o_proj(att)
    DenseLinearForward(pool, b.att.data(), lin.wo, nullptr, b.proj.data(), m);
    AddInPlace(b.x.data(), b.proj.data(), m * d);

    // --- MLP ----------------------------------------------------------------------------
    kernels::RmsNorm(b.x.data(), lw.ffn_norm.data, b.xn.data(), m, d, c.norm_eps);
    Observe(args.observer, l, ActivationPoint::kFfnInput, b.xn, m, d);
    // gate, up                                                            [m, f]
    DenseLinearForward(pool, b.xn.data(), lin.w_gate, nullptr, b.gate.data(), m);
    DenseLinearForward(pool, b.xn.data(), lin.w_up, nullptr, b.up.data(), m);
    // hidden = SiLU(gate) * up (in place in gate)                         [m, f]
    kernels::SiluMul(b.gate.data(), b.up.data(), b.gate.data(), m * f);
    Observe(args.observer, l, ActivationPoint::kDownInput, b.gate, m, f);
    // x += down(hidden)
    DenseLinearForward(pool, b.gate.data(), lin.w_down, nullptr, b.proj.data(), m);
    AddInPlace(b.x.data(), b.proj.data(), m * d);
  }
  kv.Grow(static_cast<int32_t>(m));
  transformer_internal::Head(args, pool, b, m);
}

namespace transformer_internal {

void Embed(const ForwardArgs& args, const KvCache& kv, ForwardBuffers& b) {
  const model::ModelConfig& c = *args.config;
  const int64_t m = static_cast<int64_t>(args.tokens.size()), d = c.model_dim;
  for (int64_t i = 0; i < m; ++i) b.positions[i] = kv.size() + static_cast<int32_t>(i);
  b.rope.Compute(b.positions.data(), m, c.head_dim, c.rope_theta);
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(&b.x[i * d], args.weights->token_embedding.data + int64_t{args.tokens[i]} * d,
                sizeof(float) * d);
  }
}

void WriteKv(const ForwardBuffers& b, int64_t m, const model::ModelConfig& c, KvCache& kv,
             int32_t layer) {
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(c.head_dim);
  float* k_cache = kv.keys(layer);
  float* v_cache = kv.values(layer);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t h = 0; h < c.n_kv_heads; ++h) {
      const int64_t src = (i * c.n_kv_heads + h) * c.head_dim;
      const int64_t dst = (h * kv.capacity() + b.positions[i]) * c.head_dim;
      std::memcpy(k_cache + dst, b.k.data() + src, row_bytes);
      std::memcpy(v_cache + dst, b.v.data() + src, row_bytes);
    }
  }
}

void Head(const ForwardArgs& args, kernels::ThreadPool& pool, ForwardBuffers& b, int64_t m) {
  // Only the rows whose logits are wanted go through the final norm and the [vocab, d] head.
  const model::ModelConfig& c = *args.config;
  const int64_t d = c.model_dim;
  const int64_t first_row = args.all_logits ? 0 : m - 1;
  const int64_t rows = m - first_row;
  kernels::RmsNorm(&b.x[first_row * d], args.weights->final_norm.data, b.xn.data(), rows, d,
                   c.norm_eps);
  const DenseLinear head =
      args.backend != nullptr ? args.backend->head
                              : DenseLinear{.type = DenseLinear::Type::kF32, .n = c.vocab_size,
                                            .k = d, .f32 = args.weights->output.data};
  DenseLinearForward(pool, b.xn.data(), head, nullptr, args.logits, rows);
}

}  // namespace transformer_internal

}  // namespace engine
