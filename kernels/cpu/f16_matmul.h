// Linears with compact weights and FP32 activations, FP32 accumulation:
// - MatMulF16, the F16 baseline (what llama.cpp calls F16): IEEE binary16 weights. Half the
//   weight bytes of MatMulF32 for decode, the same arithmetic for prefill. Implements
//   MatMulF32Ref (kernels/ref/ops_ref.h) on the widened weights.
// - MatMulI8, the output head of W4A4 models: int8 weights with one FP32 scale per row, a
//   quarter of the F32 bytes. Implements MatMulI8Ref.
// Both are tested in tests/kernels/f16_matmul_test.cc; the paths differ from their references
// only by float summation order.
#ifndef FP4LM_KERNELS_CPU_F16_MATMUL_H_
#define FP4LM_KERNELS_CPU_F16_MATMUL_H_

#include <cstdint>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace engine::kernels {

// Instruction-set paths (of both matmuls). kAuto picks the fastest one this CPU supports.
// kAvx512 needs avx512f + avx512bw + avx512vl (masked tail loads), kAvx2 needs avx2 + fma + f16c.
enum class F16MatMulIsa : uint8_t { kAuto, kScalar, kAvx2, kAvx512 };
const char* F16MatMulIsaName(F16MatMulIsa isa);  // "auto", "scalar", "avx2", "avx512"
// The paths this CPU can run, slowest first (kScalar always; kAuto never listed).
std::vector<F16MatMulIsa> SupportedF16MatMulIsas();

// y[m, n] = x[m, k] . float(w[n, k])^T (+ bias[n]); w holds IEEE binary16 bit patterns.
// Small m (decode) streams each weight row once and widens it in registers; large m (prefill)
// widens blocks of weight rows into per-thread scratch and runs register-tiled FMA kernels over
// all m. Threads split the weight rows.
void MatMulF16(ThreadPool& pool, const float* x, const uint16_t* w, const float* bias, float* y,
               int64_t m, int64_t n, int64_t k);
// The same on a forced path (tests, benchmarks); forcing a path the CPU lacks is a programming
// error.
void MatMulF16(ThreadPool& pool, const float* x, const uint16_t* w, const float* bias, float* y,
               int64_t m, int64_t n, int64_t k, F16MatMulIsa isa);

// y[m, n] = (x[m, k] . float(q[n, k])^T) * scale[n] (+ bias[n]): int8 weights, one FP32 scale
// per weight row (non-null). The same paths and threading as MatMulF16.
void MatMulI8(ThreadPool& pool, const float* x, const int8_t* q, const float* scale,
              const float* bias, float* y, int64_t m, int64_t n, int64_t k);
void MatMulI8(ThreadPool& pool, const float* x, const int8_t* q, const float* scale,
              const float* bias, float* y, int64_t m, int64_t n, int64_t k, F16MatMulIsa isa);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CPU_F16_MATMUL_H_
