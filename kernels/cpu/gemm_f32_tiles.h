// The register-tiled FP32 GEMM shared by the prefill (large m) paths of MatMulF32
// (kernels/cpu/ops_cpu.h) and MatMulF16 (kernels/cpu/f16_matmul.h), so that both baselines of
// `fp4lm bench` run the same kernel and differ only in how a weight row reaches FP32: F16 rows
// are widened into scratch, F32 rows read in place. Internal to kernels/cpu; the callers own
// the CPU-feature dispatch.
#ifndef FP4LM_KERNELS_CPU_GEMM_F32_TILES_H_
#define FP4LM_KERNELS_CPU_GEMM_F32_TILES_H_

#include <cstdint>

#include "kernels/cpu/thread_pool.h"

namespace engine::kernels::gemm_internal {

// Micro-kernel instruction sets. kAvx512 needs avx512f, kAvx2 needs avx2 + fma (the loader's
// own needs, e.g. f16c, are the caller's to check).
enum class TileIsa : uint8_t { kAvx2, kAvx512 };

// The weights: an [n, k] row-major matrix. With load == nullptr, data points to FP32 weights
// and the micro-kernels read them in place. Otherwise the elements are of some other type and
// load(data, index, count, dst) writes float(element[index + i]) to dst[i] for i < count
// (count <= 256, dst 64-byte aligned); it is called once per call of TiledMatMul for every
// segment of a weight row, from every pool thread, so it must be thread-safe and should be
// vectorized.
struct WeightRows {
  const void* data;
  void (*load)(const void* data, int64_t index, int64_t count, float* dst) = nullptr;
};

// y[m, n] = x[m, k] . float(w[n, k])^T (+ bias[n]), summing in float in a fixed order (k in
// blocks, SIMD lanes over m, so no horizontal sums). Pays off from m ~ 8 with FP32 weights read
// in place, from m ~ 32 when every weight has to be loaded first (each caller measures its own
// cut-over). Requires m, n, k > 0 and a CPU with `isa`. Threads split the weight rows; the
// result does not depend on the thread count.
void TiledMatMul(ThreadPool& pool, TileIsa isa, const float* x, const WeightRows& w,
                 const float* bias, float* y, int64_t m, int64_t n, int64_t k);

}  // namespace engine::kernels::gemm_internal

#endif  // FP4LM_KERNELS_CPU_GEMM_F32_TILES_H_
