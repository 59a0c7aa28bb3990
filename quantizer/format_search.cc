#include "quantizer/format_search.h"

#include <cmath>
#include <limits>

#include "kernels/cpu/ops_cpu.h"

namespace engine::quantizer {

WeightSearchResult SearchWeightQuantization(kernels::ThreadPool& pool, const float* w, int64_t n,
                                            int64_t k, std::span<const Fp4Kind> formats,
                                            std::span<const float> importance, bool search_clip) {
  std::vector<float> row_absmax(static_cast<size_t>(n), 0.0f);
  double energy = 0.0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      row_absmax[r] = std::max(row_absmax[r], std::abs(w[r * k + c]));
      energy += double{importance[c]} * w[r * k + c] * w[r * k + c];
    }
  }
  const std::span<const float> ratios =
      search_clip ? std::span<const float>(kWeightClipRatios) : std::span<const float>(kWeightClipRatios, 1);
  WeightSearchResult best;
  double best_error = std::numeric_limits<double>::infinity();
  for (const Fp4Kind kind : formats) {
    std::vector<float> clip(static_cast<size_t>(n));
    std::vector<double> row_error(static_cast<size_t>(n));
    std::vector<float> row_ratio(static_cast<size_t>(n));
    // Rows are independent: split them over the pool.
    pool.ParallelFor(n, [&](int, int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        double e_best = std::numeric_limits<double>::infinity();
        for (const float ratio : ratios) {
          const double e = WeightedRowError(w + r * k, k, kind, ratio * row_absmax[r],
                                            importance.data());
          if (e < e_best) {
            e_best = e;
            clip[r] = ratio * row_absmax[r];
            row_ratio[r] = ratio;
          }
        }
        row_error[r] = e_best;
      }
    });
    double total = 0.0, ratio_sum = 0.0;
    for (int64_t r = 0; r < n; ++r) {
      total += row_error[r];
      ratio_sum += row_ratio[r];
    }
    if (total < best_error) {
      best_error = total;
      best.quantized = QuantizeRows(w, n, k, kind, clip);
      best.mean_clip_ratio = static_cast<float>(ratio_sum / static_cast<double>(n));
    }
  }
  best.relative_error = energy > 0.0 ? best_error / energy : 0.0;
  return best;
}

ActSearchResult SearchActivationQuantization(kernels::ThreadPool& pool, const float* x,
                                             int64_t rows, int64_t k, float absmax,
                                             std::span<const Consumer> consumers,
                                             std::span<const Fp4Kind> formats, bool search_clip) {
  // Targets: the full-precision outputs, once.
  std::vector<std::vector<float>> targets;
  double energy = 0.0;
  for (const Consumer& c : consumers) {
    std::vector<float> t(static_cast<size_t>(rows * c.n));
    kernels::MatMulF32(pool, x, c.w_full, nullptr, t.data(), rows, c.n, k);
    for (float v : t) energy += double{v} * v;
    targets.push_back(std::move(t));
  }
  const std::span<const float> ratios =
      search_clip ? std::span<const float>(kActClipRatios) : std::span<const float>(kActClipRatios, 1);
  ActSearchResult best;
  double best_error = std::numeric_limits<double>::infinity();
  std::vector<float> xq(static_cast<size_t>(rows * k)), y;
  for (const Fp4Kind kind : formats) {
    for (const float ratio : ratios) {
      const float scale = absmax > 0.0f ? ratio * absmax / Fp4MaxMagnitude(kind) : 1.0f;
      FakeQuantize(x, rows * k, kind, scale, xq.data());
      double error = 0.0;
      for (size_t i = 0; i < consumers.size(); ++i) {
        const Consumer& c = consumers[i];
        y.resize(static_cast<size_t>(rows * c.n));
        kernels::MatMulF32(pool, xq.data(), c.w_quantized, nullptr, y.data(), rows, c.n, k);
        for (size_t j = 0; j < y.size(); ++j) {
          const double d = double{y[j]} - targets[i][j];
          error += d * d;
        }
      }
      if (error < best_error) {
        best_error = error;
        best = {.kind = kind, .scale = scale, .clip_ratio = ratio};
      }
    }
  }
  best.relative_error = energy > 0.0 ? best_error / energy : 0.0;
  return best;
}

}  // namespace engine::quantizer
