// The W4A4 decoder block: every linear (q, k, v, o, gate, up, down) multiplies FP4 weights by
// FP4 activations quantized with the static per-tensor scales of the model file. Norms,
// RoPE, attention (QK^T, softmax, PV), the KV cache, the embedding and the head stay FP32.
#include "engine/transformer.h"

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"

namespace engine {
namespace {

// The model's format enum and the kernels' are the same numbers (kernels may not see model/).
static_assert(static_cast<int>(Fp4Kind::kE2M1) == static_cast<int>(model::Fp4Format::kE2M1) &&
              static_cast<int>(Fp4Kind::kE3M0) == static_cast<int>(model::Fp4Format::kE3M0) &&
              static_cast<int>(Fp4Kind::kE1M2) == static_cast<int>(model::Fp4Format::kE1M2));
Fp4Kind KindOf(model::Fp4Format format) { return static_cast<Fp4Kind>(format); }

// codes [m, k/2] = Encode(x * (1 / scale)) in the input's format.
void Quantize(const float* x, int64_t m, int64_t k, const model::ActQuant& q, uint8_t* codes) {
  kernels::QuantizeActivations(x, m, k, KindOf(q.format), 1.0f / q.scale, codes);
}

// y [m, n] (= or +=) a_scale * row_scale * sum dec(a) dec(w) (+ bias).
void Gemm(kernels::ThreadPool& pool, ForwardBuffers& b, const model::ActQuant& a,
          const kernels::PreparedFp4Weight& w, float* y, int64_t m, bool accumulate) {
  kernels::Fp4Gemm(pool, {.a_codes = b.codes.data(),
                          .a_kind = KindOf(a.format),
                          .a_scale = a.scale,
                          .w = &w,
                          .y = y,
                          .m = m,
                          .accumulate = accumulate,
                          .scratch = &b.gemm_scratch});
}

absl::StatusOr<kernels::PreparedFp4Weight> Prepare(const model::Fp4Linear& w,
                                                   const std::string& name) {
  absl::StatusOr<kernels::PreparedFp4Weight> prepared = kernels::PrepareFp4Weight(
      w.codes, w.row_scale, w.bias, KindOf(w.format), w.out_features, w.in_features);
  if (!prepared.ok()) {
    return absl::Status(prepared.status().code(),
                        absl::StrCat(name, ": ", prepared.status().message()));
  }
  return prepared;
}

}  // namespace

absl::StatusOr<std::vector<Fp4PreparedLayer>> PrepareFp4Layers(const model::Fp4ModelWeights& w) {
  std::vector<Fp4PreparedLayer> layers(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const model::Fp4LayerWeights& in = w.layers[l];
    Fp4PreparedLayer& out = layers[l];
    const std::string p = absl::StrCat("layer ", l, " ");
    ENGINE_ASSIGN_OR_RETURN(out.wq, Prepare(in.wq, p + "wq"));
    ENGINE_ASSIGN_OR_RETURN(out.wk, Prepare(in.wk, p + "wk"));
    ENGINE_ASSIGN_OR_RETURN(out.wv, Prepare(in.wv, p + "wv"));
    ENGINE_ASSIGN_OR_RETURN(out.wo, Prepare(in.wo, p + "wo"));
    ENGINE_ASSIGN_OR_RETURN(out.w_gate, Prepare(in.w_gate, p + "w_gate"));
    ENGINE_ASSIGN_OR_RETURN(out.w_up, Prepare(in.w_up, p + "w_up"));
    ENGINE_ASSIGN_OR_RETURN(out.w_down, Prepare(in.w_down, p + "w_down"));
  }
  return layers;
}

namespace transformer_internal {

void RunW4A4Layers(const ForwardArgs& args, KvCache& kv, kernels::ThreadPool& pool,
                   ForwardBuffers& b, int64_t m) {
  const model::ModelConfig& c = *args.config;
  const model::ModelWeights& w = *args.weights;
  const int64_t d = c.model_dim, f = c.ffn_dim, qd = c.q_dim();
  const auto pairing = c.rope_style == model::RopeStyle::kInterleaved
                           ? kernels::RopePairing::kInterleaved
                           : kernels::RopePairing::kHalves;
  const kernels::AttentionShape attention_shape{.m = m, .n_heads = c.n_heads,
                                                .n_kv_heads = c.n_kv_heads,
                                                .head_dim = c.head_dim,
                                                .capacity = kv.capacity()};
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const model::Fp4LayerWeights& q = w.fp4.layers[l];
    const Fp4PreparedLayer& p = (*args.fp4)[l];
    // --- attention ----------------------------------------------------------------------
    // codes = FP4(RMSNorm(x) * attn_norm / s_attn_input)                    [m, d/2]
    kernels::RmsNorm(b.x.data(), w.layers[l].attn_norm.data, b.xn.data(), m, d, c.norm_eps);
    Quantize(b.xn.data(), m, d, q.attn_input, b.codes.data());
    // q, k, v in W4A4 (+ bias)                                  [m, qd], [m, kvd], [m, kvd]
    Gemm(pool, b, q.attn_input, p.wq, b.q.data(), m, false);
    Gemm(pool, b, q.attn_input, p.wk, b.k.data(), m, false);
    Gemm(pool, b, q.attn_input, p.wv, b.v.data(), m, false);
    kernels::Rope(b.q.data(), b.rope, c.n_heads, c.head_dim, pairing);
    kernels::Rope(b.k.data(), b.rope, c.n_kv_heads, c.head_dim, pairing);
    WriteKv(b, m, c, kv, l);
    // causal attention in FP32, then its output to FP4 for o_proj             [m, qd/2]
    kernels::Attention(pool, b.q.data(), kv.keys(l), kv.values(l), b.positions.data(),
                       b.att.data(), attention_shape);
    Quantize(b.att.data(), m, qd, q.attn_output, b.codes.data());
    // x += o_proj(att): the residual is added in the GEMM's epilogue
    Gemm(pool, b, q.attn_output, p.wo, b.x.data(), m, true);

    // --- MLP ----------------------------------------------------------------------------
    kernels::RmsNorm(b.x.data(), w.layers[l].ffn_norm.data, b.xn.data(), m, d, c.norm_eps);
    Quantize(b.xn.data(), m, d, q.ffn_input, b.codes.data());
    Gemm(pool, b, q.ffn_input, p.w_gate, b.gate.data(), m, false);
    Gemm(pool, b, q.ffn_input, p.w_up, b.up.data(), m, false);
    // hidden = SiLU(gate) * up, to FP4 for down_proj                           [m, f/2]
    kernels::SiluMul(b.gate.data(), b.up.data(), b.gate.data(), m * f);
    Quantize(b.gate.data(), m, f, q.down_input, b.codes.data());
    Gemm(pool, b, q.down_input, p.w_down, b.x.data(), m, true);
  }
}

}  // namespace transformer_internal
}  // namespace engine
