#include "quantizer/scale_folding.h"

#include <algorithm>
#include <cmath>

namespace engine::quantizer {
namespace {

float Median(std::vector<float> v) {
  if (v.empty()) return 0.0f;
  auto mid = v.begin() + static_cast<ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

}  // namespace

ChannelStats ComputeChannelStats(const float* x, int64_t rows, int64_t channels,
                                 std::span<const uint8_t> row_is_sink) {
  ChannelStats s;
  s.absmax.assign(static_cast<size_t>(channels), 0.0f);
  s.percentile.assign(static_cast<size_t>(channels), 0.0f);
  s.mean_square.assign(static_cast<size_t>(channels), 0.0f);
  std::vector<double> sum_squares(static_cast<size_t>(channels), 0.0);
  int64_t kept = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (!row_is_sink.empty() && row_is_sink[r]) continue;
    ++kept;
    const float* row = x + r * channels;
    for (int64_t j = 0; j < channels; ++j) {
      s.absmax[j] = std::max(s.absmax[j], std::abs(row[j]));
      sum_squares[j] += double{row[j]} * row[j];
    }
  }
  std::vector<float> column;
  column.reserve(static_cast<size_t>(kept));
  for (int64_t j = 0; j < channels; ++j) {
    s.mean_square[j] = kept > 0 ? static_cast<float>(sum_squares[j] / kept) : 0.0f;
    column.clear();
    for (int64_t r = 0; r < rows; ++r) {
      if (!row_is_sink.empty() && row_is_sink[r]) continue;
      column.push_back(std::abs(x[r * channels + j]));
    }
    if (!column.empty()) {
      const size_t at = std::min(column.size() - 1,
                                 static_cast<size_t>(kPercentile * static_cast<double>(column.size())));
      std::nth_element(column.begin(), column.begin() + static_cast<ptrdiff_t>(at), column.end());
      s.percentile[j] = column[at];
    }
    s.tensor_absmax = std::max(s.tensor_absmax, s.absmax[j]);
  }
  return s;
}

std::vector<float> PowerOfTwoFactors(const ChannelStats& stats, int max_shift) {
  const float reference = Median(stats.absmax);
  std::vector<float> factors(stats.absmax.size(), 1.0f);
  if (!(reference > 0.0f)) return factors;
  for (size_t j = 0; j < factors.size(); ++j) {
    if (!(stats.absmax[j] > 0.0f)) continue;
    const int shift = static_cast<int>(std::lround(std::log2(stats.absmax[j] / reference)));
    factors[j] = std::ldexp(1.0f, std::clamp(shift, 0, max_shift));
  }
  return factors;
}

std::vector<float> MigrationFactors(const ChannelStats& stats,
                                    std::span<const float> weight_column_absmax, float alpha) {
  std::vector<float> factors(stats.percentile.size(), 1.0f);
  for (size_t j = 0; j < factors.size(); ++j) {
    const double r = std::max(stats.percentile[j], 1e-6f);
    const double w = std::max(weight_column_absmax[j], 1e-6f);
    factors[j] = static_cast<float>(std::pow(r, alpha) / std::pow(w, 1.0 - alpha));
  }
  const float median = Median(factors);
  for (float& f : factors) f = std::clamp(f / median, 1.0f / 1024.0f, 1024.0f);
  return factors;
}

std::vector<float> ShareAcrossGroups(std::span<const float> per_q_channel, int n_heads,
                                     int n_kv_heads, int head_dim) {
  const int group = n_heads / n_kv_heads;
  std::vector<float> shared(static_cast<size_t>(n_kv_heads * head_dim), 0.0f);
  for (int h = 0; h < n_heads; ++h) {
    for (int d = 0; d < head_dim; ++d) {
      float& s = shared[(h / group) * head_dim + d];
      s = std::max(s, per_q_channel[h * head_dim + d]);
    }
  }
  return shared;
}

std::vector<float> ExpandToQueryHeads(std::span<const float> per_kv_channel, int n_heads,
                                      int n_kv_heads, int head_dim) {
  const int group = n_heads / n_kv_heads;
  std::vector<float> expanded(static_cast<size_t>(n_heads * head_dim));
  for (int h = 0; h < n_heads; ++h) {
    for (int d = 0; d < head_dim; ++d) {
      expanded[h * head_dim + d] = per_kv_channel[(h / group) * head_dim + d];
    }
  }
  return expanded;
}

void DivideColumns(float* x, int64_t rows, int64_t channels, std::span<const float> s) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < channels; ++j) x[r * channels + j] /= s[j];
  }
}

void MultiplyColumns(float* w, int64_t n, int64_t k, std::span<const float> s) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < k; ++j) w[r * k + j] *= s[j];
  }
}

void DivideRows(float* w, int64_t n, int64_t k, std::span<const float> s) {
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < k; ++j) w[r * k + j] /= s[r];
  }
}

void DivideVector(float* v, std::span<const float> s) {
  for (size_t j = 0; j < s.size(); ++j) v[j] /= s[j];
}

}  // namespace engine::quantizer
