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

  // Space-separated list of the features present, e.g. "avx2 fma f16c avx512f ...".
  std::string ToString() const;
};

// Queries CPUID (and XGETBV for OS support of the wide registers). Cheap; call once.
CpuFeatures DetectCpuFeatures();

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CORE_CPU_FEATURES_H_
