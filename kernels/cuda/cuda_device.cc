// Device discovery and the host-side test wrappers of the FP4 kernels (CUDA builds only; see
// cuda_stub.cc for the CUDA-less twin). Compiled as host C++20, launching through fp4_unpack.h.
#include "kernels/cuda/cuda_device.h"

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/fp4_unpack.h"

namespace engine::kernels {
namespace {

// Owns one cudaMalloc allocation; frees it on every return path of the wrappers below.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }

  absl::Status Allocate(size_t bytes) {
    ENGINE_CUDA_RETURN_IF_ERROR(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes));
    return absl::OkStatus();
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

}  // namespace

absl::StatusOr<CudaDeviceInfo> QueryCudaDevice() {
  int count = 0;
  if (const cudaError_t err = cudaGetDeviceCount(&count); err != cudaSuccess) {
    // No driver or no device is an environment fact, not an internal error.
    return absl::FailedPreconditionError(absl::StrCat("no usable CUDA device: cudaGetDeviceCount: ",
                                                      cudaGetErrorName(err), ": ",
                                                      cudaGetErrorString(err)));
  }
  if (count == 0) {
    return absl::FailedPreconditionError("no usable CUDA device: cudaGetDeviceCount returned 0");
  }
  cudaDeviceProp prop{};
  ENGINE_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, 0));
  CudaDeviceInfo info;
  info.device = 0;
  info.device_count = count;
  info.name = prop.name;
  info.sm_major = prop.major;
  info.sm_minor = prop.minor;
  info.total_memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  info.multiprocessor_count = prop.multiProcessorCount;
  return info;
}

absl::StatusOr<std::vector<float>> CudaUnpackFp4ForTest(std::span<const uint8_t> packed,
                                                        int64_t n, float scale) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("CudaUnpackFp4ForTest: n = ", n));
  const auto n_bytes = static_cast<size_t>((n + 1) / 2);
  if (packed.size() < n_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("CudaUnpackFp4ForTest: ", n,
                                                   " FP4 codes need ", n_bytes,
                                                   " packed bytes, got ", packed.size()));
  }
  std::vector<float> out(static_cast<size_t>(n));
  if (n == 0) return out;
  ENGINE_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  DeviceBuffer d_packed, d_out;
  ENGINE_RETURN_IF_ERROR(d_packed.Allocate(n_bytes));
  ENGINE_RETURN_IF_ERROR(d_out.Allocate(out.size() * sizeof(float)));
  ENGINE_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(d_packed.as<uint8_t>(), packed.data(), n_bytes, cudaMemcpyHostToDevice));
  ENGINE_RETURN_IF_ERROR(LaunchFp4UnpackToF32(d_packed.as<uint8_t>(), d_out.as<float>(), n, scale,
                                              /*stream=*/nullptr));
  // A synchronous copy on the legacy default stream waits for the kernel and reports its
  // execution errors.
  ENGINE_CUDA_RETURN_IF_ERROR(cudaMemcpy(out.data(), d_out.as<float>(), out.size() * sizeof(float),
                                         cudaMemcpyDeviceToHost));
  return out;
}

absl::StatusOr<std::vector<uint8_t>> CudaPackFp4ForTest(std::span<const float> values) {
  const auto n = static_cast<int64_t>(values.size());
  std::vector<uint8_t> packed(static_cast<size_t>((n + 1) / 2));
  if (n == 0) return packed;
  ENGINE_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  DeviceBuffer d_values, d_packed;
  ENGINE_RETURN_IF_ERROR(d_values.Allocate(values.size() * sizeof(float)));
  ENGINE_RETURN_IF_ERROR(d_packed.Allocate(packed.size()));
  ENGINE_CUDA_RETURN_IF_ERROR(cudaMemcpy(d_values.as<float>(), values.data(),
                                         values.size() * sizeof(float), cudaMemcpyHostToDevice));
  ENGINE_RETURN_IF_ERROR(
      LaunchNvCvtF32ToFp4x2(d_values.as<float>(), d_packed.as<uint8_t>(), n, /*stream=*/nullptr));
  ENGINE_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(packed.data(), d_packed.as<uint8_t>(), packed.size(), cudaMemcpyDeviceToHost));
  return packed;
}

}  // namespace engine::kernels
