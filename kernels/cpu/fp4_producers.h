// Fused producers of the W4A4 block: the FP32 op that feeds a linear layer and the FP4
// quantization of its output, one row at a time through a cache-resident buffer, rows split
// across threads. The [m, k] FP32 intermediate never goes to memory, and the codes are the
// same, bit for bit, as the op followed by QuantizeActivations (tests/kernels/
// fp4_producers_test.cc).
#ifndef FP4LM_KERNELS_CPU_FP4_PRODUCERS_H_
#define FP4LM_KERNELS_CPU_FP4_PRODUCERS_H_

#include <cstdint>

#include "kernels/core/fp4_format.h"
#include "kernels/cpu/thread_pool.h"

namespace engine::kernels {

// Where the codes go and how: codes [m, k / 2] = Encode(value * inv_scale) in `kind`.
struct Fp4Output {
  Fp4Kind kind = Fp4Kind::kE2M1;
  float inv_scale = 1.0f;
  uint8_t* codes = nullptr;
};

// codes = FP4(RmsNorm(x) * gamma): the input of q/k/v and of gate/up.
void RmsNormToFp4(ThreadPool& pool, const float* x, const float* gamma, int64_t m, int64_t dim,
                  float eps, const Fp4Output& out);

// codes = FP4(SiLU(gate) * up): the input of down_proj.
void SiluMulToFp4(ThreadPool& pool, const float* gate, const float* up, int64_t m, int64_t dim,
                  const Fp4Output& out);

// codes = FP4(x): the attention output for o_proj (the attention itself runs per head).
void QuantizeToFp4(ThreadPool& pool, const float* x, int64_t m, int64_t dim,
                   const Fp4Output& out);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_FP4_PRODUCERS_H_
