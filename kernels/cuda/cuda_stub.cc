// CUDA-less build of kernels/cuda: every entry point reports that CUDA is not compiled in, so
// callers (and tests, which skip on it) need no #ifdef.
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/cuda_device.h"

namespace engine::kernels {
namespace {

absl::Status NoCuda() {
  return absl::UnimplementedError("fp4lm was built without CUDA (FP4LM_WITH_CUDA=OFF)");
}

}  // namespace

absl::StatusOr<CudaDeviceInfo> QueryCudaDevice() { return NoCuda(); }

absl::StatusOr<std::vector<float>> CudaUnpackFp4ForTest(std::span<const uint8_t> /*packed*/,
                                                        int64_t /*n*/, float /*scale*/) {
  return NoCuda();
}

absl::StatusOr<std::vector<uint8_t>> CudaPackFp4ForTest(std::span<const float> /*values*/) {
  return NoCuda();
}

}  // namespace engine::kernels
