// The W4A16 baseline linear: the FP4 weights of W4A4 (the SAME PreparedFp4Weight, no second copy)
// times FP32 activations, decoded to FP32 in registers and accumulated in FP32. It isolates what
// 4-bit activations add to 4-bit weights. Implements W4A16LinearRef (kernels/ref/w4a16_ref.h) up
// to float summation order (tests/kernels/w4a16_gemm_test.cc).
#ifndef FP4LM_KERNELS_CPU_W4A16_GEMM_H_
#define FP4LM_KERNELS_CPU_W4A16_GEMM_H_

#include <cstdint>
#include <vector>

#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/thread_pool.h"

namespace engine::kernels {

// Instruction-set paths. kAuto picks the fastest one this CPU supports. kAvx512 needs avx512f,
// kAvx2 needs avx2 + fma.
enum class W4A16Isa : uint8_t { kAuto, kScalar, kAvx2, kAvx512 };
const char* W4A16IsaName(W4A16Isa isa);  // "auto", "scalar", "avx2", "avx512"
// The paths this CPU can run, slowest first (kScalar always; kAuto never listed).
std::vector<W4A16Isa> SupportedW4A16Isas();

struct W4A16GemmArgs {
  const float* x = nullptr;                // [m, w->k()] FP32 activations
  const PreparedFp4Weight* w = nullptr;
  float* y = nullptr;                      // [m, w->n()]
  int64_t m = 0;
  bool accumulate = false;                 // y = y_old + value
  W4A16Isa isa = W4A16Isa::kAuto;          // forcing a path the CPU lacks is a programming error
};

// y = x . (row_scale * Decode(w))^T (+ bias) (+ y_old). Each 64-byte block of the prepared
// layout (16 rows x 8 k) is loaded once and decoded in registers for a chunk of activation rows:
// decode (m = 1) streams the weights at 4 bits, prefill reuses each decoded block up to 8 times.
// Threads split the 16-row tiles.
void W4A16Gemm(ThreadPool& pool, const W4A16GemmArgs& args);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_W4A16_GEMM_H_
