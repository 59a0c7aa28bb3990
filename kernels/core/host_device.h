// ENGINE_HOST_DEVICE marks functions that must compile for both the host and CUDA devices, so
// kernels/core headers (fp4.h, ...) are one definition shared by every backend.
#ifndef FP4LM_KERNELS_CORE_HOST_DEVICE_H_
#define FP4LM_KERNELS_CORE_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define ENGINE_HOST_DEVICE __host__ __device__
#else
#define ENGINE_HOST_DEVICE
#endif

#endif  // FP4LM_KERNELS_CORE_HOST_DEVICE_H_
