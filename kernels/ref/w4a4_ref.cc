// Scalar W4A4 references (see w4a4_ref.h for the exact definition). Compiled with
// -ffp-contract=off (kernels/CMakeLists.txt): the epilogue's multiplies and adds must round
// one by one.
#include "kernels/ref/w4a4_ref.h"

#include <cstddef>
#include <vector>

#include "kernels/core/fp4.h"

namespace engine::kernels {

void QuantizeActivationsRef(const float* x, int64_t m, int64_t k, Fp4Kind kind, float inv_scale,
                            uint8_t* codes) {
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    uint8_t* ci = codes + i * (k / 2);
    for (int64_t j = 0; j < k; j += 2) {
      const uint8_t even = Fp4Encode(kind, xi[j] * inv_scale);
      const uint8_t odd = Fp4Encode(kind, xi[j + 1] * inv_scale);
      ci[j / 2] = PackE2M1x2(even, odd);
    }
  }
}

float W4A4Epilogue(int32_t acc, float c, float a_scale, float row_scale, const float* bias_j,
                   const float* y_old) {
  float v = static_cast<float>(acc);
  v = v * c;
  v = v * a_scale;
  v = v * row_scale;
  if (bias_j != nullptr) v = v + *bias_j;
  if (y_old != nullptr) v = *y_old + v;
  return v;
}

void Fp4LinearRef(const Fp4LinearArgs& args) {
  const int64_t half = args.k / 2;
  const float c = W4A4IntScaleInverse(args.a_kind, args.w_kind);
  // Integer values of the weights, once; then one activation row at a time.
  std::vector<int32_t> w_int(static_cast<size_t>(args.n * args.k));
  for (int64_t j = 0; j < args.n; ++j) {
    for (int64_t t = 0; t < args.k; ++t) {
      w_int[j * args.k + t] = Fp4Int(args.w_kind, E2M1At(args.w_codes + j * half, t));
    }
  }
  std::vector<int32_t> a_int(static_cast<size_t>(args.k));
  for (int64_t i = 0; i < args.m; ++i) {
    for (int64_t t = 0; t < args.k; ++t) {
      a_int[t] = Fp4Int(args.a_kind, E2M1At(args.a_codes + i * half, t));
    }
    for (int64_t j = 0; j < args.n; ++j) {
      const int32_t* w = w_int.data() + j * args.k;
      int32_t acc = 0;  // exact: |acc| <= 64 * 64 * k < 2^31 for k <= kW4A4MaxK
      for (int64_t t = 0; t < args.k; ++t) acc += a_int[t] * w[t];
      float* yij = args.y + i * args.n + j;
      *yij = W4A4Epilogue(acc, c, args.a_scale, args.row_scale[j],
                          args.bias != nullptr ? args.bias + j : nullptr,
                          args.accumulate ? yij : nullptr);
    }
  }
}

}  // namespace engine::kernels
