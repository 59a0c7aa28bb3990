// Scalar W4A16 reference (definition in w4a16_ref.h). Double accumulation makes it more
// accurate than any float kernel it judges: every product Decode * x is exact in double.
#include "kernels/ref/w4a16_ref.h"

#include <cstddef>
#include <vector>

#include "kernels/core/fp4.h"

namespace engine::kernels {

void W4A16LinearRef(const float* x, const uint8_t* codes, const float* row_scale,
                    const float* bias, Fp4Kind kind, int64_t m, int64_t n, int64_t k,
                    bool accumulate, float* y) {
  const int64_t half = k / 2;
  std::vector<double> w_row(static_cast<size_t>(k));
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t t = 0; t < k; ++t) w_row[t] = Fp4Decode(kind, E2M1At(codes + j * half, t));
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      double acc = 0.0;
      for (int64_t t = 0; t < k; ++t) acc += w_row[t] * xi[t];
      double value = double{row_scale[j]} * acc;
      if (bias != nullptr) value += bias[j];
      float* yij = y + i * n + j;
      *yij = accumulate ? *yij + static_cast<float>(value) : static_cast<float>(value);
    }
  }
}

}  // namespace engine::kernels
