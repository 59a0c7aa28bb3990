// Threaded, vectorized CPU implementations of the FP32 decoder ops. Each one implements the
// scalar reference of the same name in kernels/ref/ops_ref.h and is tested against it
// (tests/kernels/ops_cpu_test.cc). SIMD width is chosen at run time (GCC target_clones: one
// binary serves AVX2-only and AVX-512 machines).
#ifndef FP4LM_KERNELS_CPU_OPS_CPU_H_
#define FP4LM_KERNELS_CPU_OPS_CPU_H_

#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"
#include "kernels/ref/ops_ref.h"

namespace engine::kernels {

// y[m, n] = x[m, k] . w[n, k]^T (+ bias[n]). Implements MatMulF32Ref.
void MatMulF32(ThreadPool& pool, const float* x, const float* w, const float* bias, float* y,
               int64_t m, int64_t n, int64_t k);

// Implements RmsNormRef (float accumulation in a fixed lane order).
void RmsNorm(const float* x, const float* gamma, float* y, int64_t m, int64_t dim, float eps);

// cos/sin of every (token, pair) for RoPE, computed once per forward pass and shared by all
// layers and heads. Angles are computed in double, as the reference does.
struct RopeTable {
  int64_t m = 0;
  int64_t half = 0;        // head_dim / 2
  std::vector<float> cos;  // [m, half]
  std::vector<float> sin;  // [m, half]
  void Compute(const int32_t* positions, int64_t m, int64_t head_dim, float theta);
};

// Implements RopeRef with a precomputed table.
void Rope(float* x, const RopeTable& table, int64_t n_heads, int64_t head_dim,
          RopePairing pairing);

// Implements SiluMulRef.
void SiluMul(const float* gate, const float* up, float* out, int64_t n);

// Attention's kernels (kernels/cpu/attention_cpu.cc). kAuto takes the best one this CPU has;
// the tests run each supported one against the reference.
enum class AttentionPath { kAuto, kPortable, kAvx2, kAvx512 };
std::vector<AttentionPath> SupportedAttentionPaths();  // in increasing order of speed
const char* AttentionPathName(AttentionPath path);

// Implements AttentionRef, parallel over (token, head). A forced path must be supported.
void Attention(ThreadPool& pool, const float* q, const float* k_cache, const float* v_cache,
               const int32_t* positions, float* out, const AttentionShape& shape,
               AttentionPath path = AttentionPath::kAuto);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_OPS_CPU_H_
