// What the rest of the engine and the tests may ask of the CUDA backend without including any
// CUDA header: device discovery and host-side wrappers around the FP4 kernels. Implemented by
// cuda_device.cc in CUDA builds and by cuda_stub.cc (UnimplementedError) otherwise.
#ifndef FP4LM_KERNELS_CUDA_CUDA_DEVICE_H_
#define FP4LM_KERNELS_CUDA_CUDA_DEVICE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace engine::kernels {

struct CudaDeviceInfo {
  int device = 0;                  // CUDA device ordinal
  int device_count = 0;            // devices visible to this process
  std::string name;                // e.g. "NVIDIA H100 80GB HBM3"
  int sm_major = 0;                // compute capability, e.g. 9.0 for H100/H200
  int sm_minor = 0;
  int64_t total_memory_bytes = 0;  // global memory
  int multiprocessor_count = 0;
};

// Describes device 0. UnimplementedError in a build without CUDA; FailedPreconditionError when
// the runtime finds no usable device or driver (the message carries the CUDA error).
absl::StatusOr<CudaDeviceInfo> QueryCudaDevice();

// Test helper: copies `packed` to device 0, runs LaunchFp4UnpackToF32 on n codes, and returns
// the n floats. `packed` must hold at least (n + 1) / 2 bytes (InvalidArgumentError otherwise).
absl::StatusOr<std::vector<float>> CudaUnpackFp4ForTest(std::span<const uint8_t> packed,
                                                        int64_t n, float scale);

// Test oracle: packs `values` on device 0 with NVIDIA's __nv_cvt_float2_to_fp4x2 (round to
// nearest), two per byte; an odd count pairs the last value with 0.0f.
absl::StatusOr<std::vector<uint8_t>> CudaPackFp4ForTest(std::span<const float> values);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CUDA_CUDA_DEVICE_H_
