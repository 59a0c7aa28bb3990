// Scalar reference implementations of the FP32 ops of a Llama decoder: the single truth that
// the threaded/vectorized CPU kernels (kernels/cpu/ops_cpu.h) are tested against. Written for
// clarity, never optimized. Every tensor is contiguous, shapes outermost-first.
#ifndef FP4LM_KERNELS_REF_OPS_REF_H_
#define FP4LM_KERNELS_REF_OPS_REF_H_

#include <cstdint>
#include <span>

namespace engine::kernels {

// y[m, n] = sum_k x[m, k] * w[n, k]  (+ bias[n] if bias is not null).
// x: [m, k], w: [n, k] (a linear layer's [out, in] weight), y: [m, n]. Accumulates in double so
// the reference is more accurate than any float kernel it judges.
void MatMulF32Ref(const float* x, const float* w, const float* bias, float* y, int64_t m,
                  int64_t n, int64_t k);

// y[m, n] = scale[n] * sum_k x[m, k] * q[n, k]  (+ bias[n] if bias is not null): int8 weights
// with one scale per row (the W4A4 models' output head). Accumulates in double.
void MatMulI8Ref(const float* x, const int8_t* q, const float* scale, const float* bias,
                 float* y, int64_t m, int64_t n, int64_t k);

// y[i, :] = x[i, :] / sqrt(mean(x[i, :]^2) + eps) * gamma.  x, y: [m, dim]; may alias.
void RmsNormRef(const float* x, const float* gamma, float* y, int64_t m, int64_t dim, float eps);

// How RoPE pairs elements within a head (see model/config.h RopeStyle).
enum class RopePairing : uint8_t { kInterleaved, kHalves };

// Rotates each head of x in place: x: [m, n_heads, head_dim]; token i sits at positions[i].
// Pair j (j < head_dim/2) rotates by angle position * theta^(-2j/head_dim). Interleaved pairs are
// (2j, 2j+1); halves pair (j, j + head_dim/2).
void RopeRef(float* x, const int32_t* positions, int64_t m, int64_t n_heads, int64_t head_dim,
             float theta, RopePairing pairing);

// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
void SiluMulRef(const float* gate, const float* up, float* out, int64_t n);

// Causal grouped-query attention of m new query tokens against a KV cache.
//   q:       [m, n_heads, head_dim]; token i sits at position positions[i]
//   k_cache: [n_kv_heads, capacity, head_dim]; entries 0..positions[i] are valid for token i
//   v_cache: [n_kv_heads, capacity, head_dim]
//   out:     [m, n_heads, head_dim]
// Query head h reads kv head h / (n_heads / n_kv_heads). Scores are scaled by 1/sqrt(head_dim).
struct AttentionShape {
  int64_t m = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;
};
void AttentionRef(const float* q, const float* k_cache, const float* v_cache,
                  const int32_t* positions, float* out, const AttentionShape& shape);

// In-place numerically stable softmax of one row.
void SoftmaxRef(std::span<float> row);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_REF_OPS_REF_H_
