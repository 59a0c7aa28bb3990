// Run-time detection of the x86 SIMD features the CPU kernels dispatch on. One binary runs on
// AVX2-only and AVX-512 machines; `fp4lm info` prints what was detected and which path runs.
#ifndef FP4LM_KERNELS_CORE_CPU_FEATURES_H_
#define FP4LM_KERNELS_CORE_CPU_FEATURES_H_

#include <string>

namespace engine::kernels {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avxvnni = false;
  // AMX tiles with int8 dot products, and the kernel's permission to use them granted to this
  // process (Linux asks each process to request the tile data state: arch_prctl).
  bool amx_int8 = false;

  // Space-separated list of the features present, e.g. "avx2 fma f16c avx512f ...".
  std::string ToString() const;
};

// Queries CPUID (and XGETBV for OS support of the wide registers). Cheap; call once. Where
// the CPU has AMX-INT8 it also requests the process's permission to use the tile registers
// (once per process; harmless to repeat), so amx_int8 means "usable now".
CpuFeatures DetectCpuFeatures();

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CORE_CPU_FEATURES_H_
