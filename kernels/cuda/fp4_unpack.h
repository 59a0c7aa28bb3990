// Launchers for the FP4 (E2M1) unpack kernel and the cuda_fp4.h packing oracle. CUDA-only
// header (it names cudaStream_t); host code without CUDA headers uses cuda_device.h instead.
#ifndef FP4LM_KERNELS_CUDA_FP4_UNPACK_H_
#define FP4LM_KERNELS_CUDA_FP4_UNPACK_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "absl/status/status.h"

namespace engine::kernels {

// d_out[i] = DecodeE2M1(code i of d_packed) * scale for i in [0, n); two codes per byte, element
// 2i in the low nibble (kernels/core/fp4.h). d_packed holds (n + 1) / 2 bytes and d_out n
// floats, both in device memory. Asynchronous on `stream`; n == 0 launches nothing.
// InvalidArgumentError for n < 0 or null pointers with n > 0; InternalError on a launch error.
absl::Status LaunchFp4UnpackToF32(const uint8_t* d_packed, float* d_out, int64_t n, float scale,
                                  cudaStream_t stream);

// Test oracle: d_packed[i] = __nv_cvt_float2_to_fp4x2({d_values[2i], d_values[2i+1]}) with
// round-to-nearest, i.e. NVIDIA's own E2M1 conversion (not ours). An odd n pairs the last value
// with 0.0f. Asynchronous on `stream`.
absl::Status LaunchNvCvtF32ToFp4x2(const float* d_values, uint8_t* d_packed, int64_t n,
                                   cudaStream_t stream);

}  // namespace engine::kernels

#endif  // FP4LM_KERNELS_CUDA_FP4_UNPACK_H_
