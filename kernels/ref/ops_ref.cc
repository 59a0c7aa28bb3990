#include "kernels/ref/ops_ref.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace engine::kernels {

void MatMulF32Ref(const float* x, const float* w, const float* bias, float* y, int64_t m,
                  int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = bias != nullptr ? bias[j] : 0.0;
      for (int64_t kk = 0; kk < k; ++kk) {
        acc += static_cast<double>(x[i * k + kk]) * static_cast<double>(w[j * k + kk]);
      }
      y[i * n + j] = static_cast<float>(acc);
    }
  }
}

void MatMulI8Ref(const float* x, const int8_t* q, const float* scale, const float* bias,
                 float* y, int64_t m, int64_t n, int64_t k) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t kk = 0; kk < k; ++kk) acc += double{x[i * k + kk]} * q[j * k + kk];
      acc *= scale[j];
      if (bias != nullptr) acc += bias[j];
      y[i * n + j] = static_cast<float>(acc);
    }
  }
}

void RmsNormRef(const float* x, const float* gamma, float* y, int64_t m, int64_t dim, float eps) {
  for (int64_t i = 0; i < m; ++i) {
    double sum_squares = 0.0;
    for (int64_t d = 0; d < dim; ++d) sum_squares += double{x[i * dim + d]} * x[i * dim + d];
    const double inv_rms = 1.0 / std::sqrt(sum_squares / static_cast<double>(dim) + eps);
    for (int64_t d = 0; d < dim; ++d) {
      y[i * dim + d] = static_cast<float>(x[i * dim + d] * inv_rms * gamma[d]);
    }
  }
}

void RopeRef(float* x, const int32_t* positions, int64_t m, int64_t n_heads, int64_t head_dim,
             float theta, RopePairing pairing) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = x + (i * n_heads + h) * head_dim;
      for (int64_t j = 0; j < half; ++j) {
        const double freq = std::pow(static_cast<double>(theta), -2.0 * j / head_dim);
        const double angle = positions[i] * freq;
        const double c = std::cos(angle), s = std::sin(angle);
        float* a = pairing == RopePairing::kInterleaved ? &head[2 * j] : &head[j];
        float* b = pairing == RopePairing::kInterleaved ? &head[2 * j + 1] : &head[j + half];
        const double a0 = *a, b0 = *b;
        *a = static_cast<float>(a0 * c - b0 * s);
        *b = static_cast<float>(a0 * s + b0 * c);
      }
    }
  }
}

void SiluMulRef(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void SoftmaxRef(std::span<float> row) {
  if (row.empty()) return;
  const float max = *std::max_element(row.begin(), row.end());
  double sum = 0.0;
  for (float& v : row) {
    v = std::exp(v - max);
    sum += v;
  }
  for (float& v : row) v = static_cast<float>(v / sum);
}

void AttentionRef(const float* q, const float* k_cache, const float* v_cache,
                  const int32_t* positions, float* out, const AttentionShape& s) {
  const int64_t group = s.n_heads / s.n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<float> scores;
  for (int64_t i = 0; i < s.m; ++i) {
    const int64_t n_keys = positions[i] + 1;  // causal: keys 0..position inclusive
    scores.resize(static_cast<size_t>(n_keys));
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t kv_head = h / group;
      const float* qh = q + (i * s.n_heads + h) * s.head_dim;
      const float* kh = k_cache + kv_head * s.capacity * s.head_dim;
      const float* vh = v_cache + kv_head * s.capacity * s.head_dim;
      for (int64_t t = 0; t < n_keys; ++t) {
        double dot = 0.0;
        for (int64_t d = 0; d < s.head_dim; ++d) dot += double{qh[d]} * kh[t * s.head_dim + d];
        scores[static_cast<size_t>(t)] = static_cast<float>(dot * scale);
      }
      SoftmaxRef(scores);
      float* oh = out + (i * s.n_heads + h) * s.head_dim;
      for (int64_t d = 0; d < s.head_dim; ++d) {
        double acc = 0.0;
        for (int64_t t = 0; t < n_keys; ++t) acc += double{scores[t]} * vh[t * s.head_dim + d];
        oh[d] = static_cast<float>(acc);
      }
    }
  }
}

}  // namespace engine::kernels
