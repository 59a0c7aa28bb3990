// Converts CUDA runtime errors into absl::Status values at the call site (DESIGN.md B.4): the
// same information CUTLASS's CUDA_CHECK prints, returned instead of exit(). CUDA-only header.
#ifndef FP4LM_KERNELS_CUDA_CUDA_STATUS_H_
#define FP4LM_KERNELS_CUDA_CUDA_STATUS_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

// Returns InternalError("<expr>: <cuda error name>: <cuda error string> at file:line") from the
// enclosing function when `expr` (a cudaError_t) is not cudaSuccess. After a kernel launch use
// ENGINE_CUDA_RETURN_IF_ERROR(cudaGetLastError()).
#define ENGINE_CUDA_RETURN_IF_ERROR(expr)                                                  \
  do {                                                                                    \
    if (const cudaError_t engine_cuda_err_ = (expr); engine_cuda_err_ != cudaSuccess) {   \
      return absl::InternalError(absl::StrCat(#expr, ": ", cudaGetErrorName(engine_cuda_err_), \
                                              ": ", cudaGetErrorString(engine_cuda_err_),  \
                                              " at ", __FILE__, ":", __LINE__));          \
    }                                                                                     \
  } while (0)

#endif  // FP4LM_KERNELS_CUDA_CUDA_STATUS_H_
