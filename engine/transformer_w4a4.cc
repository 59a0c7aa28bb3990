// The W4A4 decoder block: every linear (q, k, v, o, gate, up, down) multiplies FP4 weights by
// FP4 activations quantized with the static per-tensor scales of the model file. Norms,
// RoPE, attention (QK^T, softmax, PV), the KV cache and the embedding stay FP32; the head is
// int8 rows with per-row scales (engine/backend_weights.h).
#include "engine/transformer.h"

#include "kernels/cpu/fp4_producers.h"

namespace engine {
namespace {

// The model's format enum and the kernels' are the same numbers (kernels may not see model/).
static_assert(static_cast<int>(Fp4Kind::kE2M1) == static_cast<int>(model::Fp4Format::kE2M1) &&
              static_cast<int>(Fp4Kind::kE3M0) == static_cast<int>(model::Fp4Format::kE3M0) &&
              static_cast<int>(Fp4Kind::kE1M2) == static_cast<int>(model::Fp4Format::kE1M2));
Fp4Kind KindOf(model::Fp4Format format) { return static_cast<Fp4Kind>(format); }

// Where a producer writes the FP4 input of the next linear: b.codes, in the input's format.
kernels::Fp4Output CodesFor(ForwardBuffers& b, const model::ActQuant& q) {
  return {.kind = KindOf(q.format), .inv_scale = 1.0f / q.scale, .codes = b.codes.data()};
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

}  // namespace

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
    const Fp4PreparedLayer& p = args.backend->fp4[l];
    // --- attention ----------------------------------------------------------------------
    // codes = FP4(RMSNorm(x) * attn_norm / s_attn_input)                    [m, d/2]
    kernels::RmsNormToFp4(pool, b.x.data(), w.layers[l].attn_norm.data, m, d, c.norm_eps,
                          CodesFor(b, q.attn_input));
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
    kernels::QuantizeToFp4(pool, b.att.data(), m, qd, CodesFor(b, q.attn_output));
    // x += o_proj(att): the residual is added in the GEMM's epilogue
    Gemm(pool, b, q.attn_output, p.wo, b.x.data(), m, true);

    // --- MLP ----------------------------------------------------------------------------
    kernels::RmsNormToFp4(pool, b.x.data(), w.layers[l].ffn_norm.data, m, d, c.norm_eps,
                          CodesFor(b, q.ffn_input));
    Gemm(pool, b, q.ffn_input, p.w_gate, b.gate.data(), m, false);
    Gemm(pool, b, q.ffn_input, p.w_up, b.up.data(), m, false);
    // hidden = SiLU(gate) * up, to FP4 for down_proj                           [m, f/2]
    kernels::SiluMulToFp4(pool, b.gate.data(), b.up.data(), m, f, CodesFor(b, q.down_input));
    Gemm(pool, b, q.down_input, p.w_down, b.x.data(), m, true);
  }
}

}  // namespace transformer_internal
}  // namespace engine
