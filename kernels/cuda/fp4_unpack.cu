// FP4 (E2M1) -> f32 unpack kernel, and a packing oracle built on NVIDIA's cuda_fp4.h conversion.
// The unpack decodes with kernels/core/fp4.h, the same header the host reference uses, so the
// device result equals DecodeE2M1(code) * scale bit for bit.
#include "kernels/cuda/fp4_unpack.h"

#include <cuda_fp4.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/core/fp4.h"
#include "kernels/cuda/cuda_status.h"

namespace engine::kernels {
namespace {

constexpr int kThreads = 256;
// Grid-stride loops cover any n; this cap only bounds the launch (about 60 blocks per SM on
// an H100, far more than needed to saturate memory bandwidth).
constexpr int64_t kMaxBlocks = 8192;

int BlocksFor(int64_t work_items) {
  const int64_t blocks = (std::max<int64_t>(work_items, 1) + kThreads - 1) / kThreads;
  return static_cast<int>(std::min(blocks, kMaxBlocks));
}

// gPacked: (n + 1) / 2 bytes, gOut: n floats.
// Vector path (gPacked 4-byte and gOut 16-byte aligned): thread t takes 8-element group g, i.e.
// one 32-bit word of 8 nibbles (little-endian, so element 8g + j is nibble j of word g) and
// writes two float4. Elements past the last whole group, and everything on the scalar path,
// are done one per thread.
__global__ void __launch_bounds__(kThreads)
    Fp4UnpackToF32Kernel(const uint8_t* __restrict__ gPacked, float* __restrict__ gOut, int64_t n,
                         float scale, bool vectorized) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t n_threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t scalar_begin = 0;
  if (vectorized) {
    const int64_t n_groups = n / 8;
    const uint32_t* gWords = reinterpret_cast<const uint32_t*>(gPacked);  // [n_groups]
    float4* gOut4 = reinterpret_cast<float4*>(gOut);                      // [2 * n_groups]
    for (int64_t g = tid; g < n_groups; g += n_threads) {
      const uint32_t rWord = gWords[g];
      float rOut[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        rOut[j] = DecodeE2M1(static_cast<uint8_t>((rWord >> (4 * j)) & 0xFu)) * scale;
      }
      gOut4[2 * g] = make_float4(rOut[0], rOut[1], rOut[2], rOut[3]);
      gOut4[2 * g + 1] = make_float4(rOut[4], rOut[5], rOut[6], rOut[7]);
    }
    scalar_begin = n_groups * 8;
  }
  for (int64_t i = scalar_begin + tid; i < n; i += n_threads) {
    gOut[i] = DecodeE2M1(E2M1At(gPacked, i)) * scale;
  }
}

// One thread per output byte: NVIDIA's conversion of the pair (x = element 2i, y = 2i + 1).
__global__ void __launch_bounds__(kThreads)
    NvCvtF32ToFp4x2Kernel(const float* __restrict__ gValues, uint8_t* __restrict__ gPacked,
                          int64_t n) {
  const int64_t n_bytes = (n + 1) / 2;
  const int64_t n_threads = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n_bytes;
       i += n_threads) {
    const float2 rPair =
        make_float2(gValues[2 * i], 2 * i + 1 < n ? gValues[2 * i + 1] : 0.0f);
    gPacked[i] = __nv_cvt_float2_to_fp4x2(rPair, __NV_E2M1, cudaRoundNearest);
  }
}

absl::Status CheckArgs(const char* op, const void* a, const void* b, int64_t n) {
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat(op, ": n must be >= 0, got ", n));
  if (n > 0 && (a == nullptr || b == nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": null device pointer for n = ", n, " elements"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status LaunchFp4UnpackToF32(const uint8_t* d_packed, float* d_out, int64_t n, float scale,
                                  cudaStream_t stream) {
  if (absl::Status s = CheckArgs("LaunchFp4UnpackToF32", d_packed, d_out, n); !s.ok()) return s;
  if (n == 0) return absl::OkStatus();
  const bool vectorized = reinterpret_cast<uintptr_t>(d_packed) % 4 == 0 &&
                          reinterpret_cast<uintptr_t>(d_out) % 16 == 0;
  // Vector path: one thread per group of 8, plus up to 7 tail elements; scalar: one per element.
  const int64_t work = vectorized ? n / 8 + n % 8 : n;
  Fp4UnpackToF32Kernel<<<BlocksFor(work), kThreads, 0, stream>>>(d_packed, d_out, n, scale,
                                                                 vectorized);
  ENGINE_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

absl::Status LaunchNvCvtF32ToFp4x2(const float* d_values, uint8_t* d_packed, int64_t n,
                                   cudaStream_t stream) {
  if (absl::Status s = CheckArgs("LaunchNvCvtF32ToFp4x2", d_values, d_packed, n); !s.ok()) {
    return s;
  }
  if (n == 0) return absl::OkStatus();
  NvCvtF32ToFp4x2Kernel<<<BlocksFor((n + 1) / 2), kThreads, 0, stream>>>(d_values, d_packed, n);
  ENGINE_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return absl::OkStatus();
}

}  // namespace engine::kernels
