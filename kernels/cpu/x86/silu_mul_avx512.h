// SiLU(gate) * up in AVX-512 (the SiluMul of kernels/cpu/ops_cpu.h), bit-identical to the
// scalar loop `gate / (1.0f + std::exp(-gate)) * up` on glibc: its expf is glibc's own
// algorithm, vectorized operation for operation. Internal to kernels/cpu.
#ifndef FP4LM_KERNELS_CPU_X86_SILU_MUL_AVX512_H_
#define FP4LM_KERNELS_CPU_X86_SILU_MUL_AVX512_H_

#include <cstdint>

namespace engine::kernels::silu_internal {

// Whether this build has the kernel: it reproduces glibc's expf, so it exists only where the
// scalar path's std::exp is glibc's (elsewhere the two could differ in the last bit).
#ifdef __GLIBC__
inline constexpr bool kHaveSiluMulAvx512 = true;
#else
inline constexpr bool kHaveSiluMulAvx512 = false;
#endif

// Needs avx512f (CPUID-checked by the caller). Without the kernel (see above) it
// runs the scalar loop.
void SiluMulAvx512(const float* gate, const float* up, float* out, int64_t n);

// Whether SiluMulAvx512 (needs avx512f) equals the scalar loop on a spread of inputs with the
// libm this process runs: false where the kernel is absent or a different expf is linked. The
// dispatch uses the kernel only where this holds.
bool SiluMulAvx512AgreesWithScalar();

// The scalar loop, which every path must reproduce bit for bit.
void SiluMulScalar(const float* gate, const float* up, float* out, int64_t n);

}  // namespace engine::kernels::silu_internal

#endif  // FP4LM_KERNELS_CPU_X86_SILU_MUL_AVX512_H_
