#include "quantizer/fp4_quant.h"

#include <cmath>

namespace engine::quantizer {

QuantizedMatrix QuantizeRows(const float* w, int64_t n, int64_t k, Fp4Kind kind,
                             std::span<const float> clip) {
  QuantizedMatrix q{.kind = kind, .n = n, .k = k};
  q.codes.assign(static_cast<size_t>(n * (k / 2)), 0);
  q.row_scale.assign(static_cast<size_t>(n), 1.0f);
  const float max_magnitude = Fp4MaxMagnitude(kind);
  for (int64_t r = 0; r < n; ++r) {
    if (!(clip[r] > 0.0f) || !std::isfinite(clip[r])) continue;  // all-zero row
    const float scale = clip[r] / max_magnitude;
    const float inv_scale = 1.0f / scale;
    q.row_scale[r] = scale;
    uint8_t* row_codes = q.codes.data() + r * (k / 2);
    for (int64_t c = 0; c < k; c += 2) {
      const uint8_t even = Fp4Encode(kind, w[r * k + c] * inv_scale);
      const uint8_t odd = Fp4Encode(kind, w[r * k + c + 1] * inv_scale);
      row_codes[c / 2] = static_cast<uint8_t>(even | (odd << 4));
    }
  }
  return q;
}

std::vector<float> Dequantize(const QuantizedMatrix& q) {
  std::vector<float> w(static_cast<size_t>(q.n * q.k));
  for (int64_t r = 0; r < q.n; ++r) {
    for (int64_t c = 0; c < q.k; ++c) {
      const uint8_t byte = q.codes[r * (q.k / 2) + c / 2];
      const uint8_t code = (c % 2 == 0) ? (byte & 0xf) : (byte >> 4);
      w[r * q.k + c] = Fp4Decode(q.kind, code) * q.row_scale[r];
    }
  }
  return w;
}

void FakeQuantize(const float* x, int64_t count, Fp4Kind kind, float scale, float* out) {
  const float inv_scale = 1.0f / scale;
  for (int64_t i = 0; i < count; ++i) out[i] = Fp4Decode(kind, Fp4Encode(kind, x[i] * inv_scale)) * scale;
}

double WeightedRowError(const float* row, int64_t k, Fp4Kind kind, float clip,
                        const float* importance) {
  if (!(clip > 0.0f)) {
    double e = 0.0;
    for (int64_t c = 0; c < k; ++c) e += double{importance[c]} * row[c] * row[c];
    return e;
  }
  const float scale = clip / Fp4MaxMagnitude(kind);
  const float inv_scale = 1.0f / scale;
  double error = 0.0;
  for (int64_t c = 0; c < k; ++c) {
    const double diff = row[c] - Fp4Decode(kind, Fp4Encode(kind, row[c] * inv_scale)) * scale;
    error += importance[c] * diff * diff;
  }
  return error;
}

}  // namespace engine::quantizer
