#include "quantizer/gptq.h"

#include <algorithm>
#include <cmath>

#include "kernels/core/fp4_format.h"
#include "kernels/cpu/ops_cpu.h"

namespace engine::quantizer {
namespace {

constexpr double kDamp = 0.01;   // GPTQ's percdamp
constexpr int64_t kBlock = 128;  // columns per lazy-update block

// In-place Cholesky a = L L^T (lower, row-major); returns false if not positive definite.
bool CholeskyLower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (int64_t p = 0; p < j; ++p) d -= a[j * n + p] * a[j * n + p];
    if (!(d > 0.0)) return false;
    const double l = std::sqrt(d);
    a[j * n + j] = l;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (int64_t p = 0; p < j; ++p) s -= a[i * n + p] * a[j * n + p];
      a[i * n + j] = s / l;
    }
    for (int64_t i = 0; i < j; ++i) a[i * n + j] = 0.0;
  }
  return true;
}

}  // namespace

GptqHessian ComputeGptqHessian(kernels::ThreadPool& pool, const float* x, int64_t rows,
                               int64_t k) {
  // H = 2/rows X^T X, via the FP32 matmul on X^T (columns of X as rows).
  std::vector<float> xt(static_cast<size_t>(k * rows));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < k; ++c) xt[c * rows + r] = x[r * k + c];
  }
  std::vector<float> hf(static_cast<size_t>(k * k));
  kernels::MatMulF32(pool, xt.data(), xt.data(), nullptr, hf.data(), k, k, rows);
  std::vector<double> h(hf.begin(), hf.end());
  double mean_diag = 0.0;
  for (int64_t i = 0; i < k; ++i) mean_diag += h[i * k + i];
  const double scale = 2.0 / static_cast<double>(rows);
  for (double& v : h) v *= scale;
  mean_diag *= scale / static_cast<double>(k);
  for (int64_t i = 0; i < k; ++i) {
    if (h[i * k + i] == 0.0) h[i * k + i] = 1.0;  // dead column
    h[i * k + i] += kDamp * std::max(mean_diag, 1e-12);
  }
  // H^-1 = L^-T L^-1 from H = L L^T; then GPTQ wants the upper Cholesky factor U of H^-1
  // (H^-1 = U^T U).
  GptqHessian result{.k = k};
  if (!CholeskyLower(h, k)) return result;  // empty u: callers fall back to nearest rounding
  // Inverse of L (lower triangular), column by column.
  std::vector<double> linv(static_cast<size_t>(k * k), 0.0);
  for (int64_t j = 0; j < k; ++j) {
    linv[j * k + j] = 1.0 / h[j * k + j];
    for (int64_t i = j + 1; i < k; ++i) {
      double s = 0.0;
      for (int64_t p = j; p < i; ++p) s += h[i * k + p] * linv[p * k + j];
      linv[i * k + j] = -s / h[i * k + i];
    }
  }
  // Hinv = Linv^T Linv.
  std::vector<double> hinv(static_cast<size_t>(k * k), 0.0);
  pool.ParallelFor(k, [&](int, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0.0;
        for (int64_t p = std::max(i, j); p < k; ++p) s += linv[p * k + i] * linv[p * k + j];
        hinv[i * k + j] = s;
      }
    }
  });
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i + 1; j < k; ++j) hinv[i * k + j] = hinv[j * k + i];
  }
  // Upper factor: Hinv = U^T U with U = (lower Cholesky of Hinv)^T.
  if (!CholeskyLower(hinv, k)) return result;
  result.u.assign(static_cast<size_t>(k * k), 0.0);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j <= i; ++j) result.u[j * k + i] = hinv[i * k + j];
  }
  return result;
}

void GptqRequantize(kernels::ThreadPool& pool, const float* w, const GptqHessian& hessian,
                    QuantizedMatrix& q) {
  const int64_t n = q.n, k = q.k;
  if (hessian.u.empty() || hessian.k != k) return;  // keep round-to-nearest codes
  const std::vector<double>& u = hessian.u;
  std::fill(q.codes.begin(), q.codes.end(), 0);
  // Rows are independent given U: each thread runs GPTQ on its own rows.
  pool.ParallelFor(n, [&](int, int64_t begin, int64_t end) {
    std::vector<double> row(static_cast<size_t>(k)), err(static_cast<size_t>(kBlock));
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < k; ++c) row[c] = w[r * k + c];
      const float scale = q.row_scale[r];
      const float inv_scale = 1.0f / scale;
      uint8_t* codes = q.codes.data() + r * (k / 2);
      for (int64_t b0 = 0; b0 < k; b0 += kBlock) {
        const int64_t b1 = std::min(k, b0 + kBlock);
        for (int64_t i = b0; i < b1; ++i) {
          const uint8_t code = Fp4Encode(q.kind, static_cast<float>(row[i]) * inv_scale);
          codes[i / 2] |= static_cast<uint8_t>(i % 2 == 0 ? code : code << 4);
          const double quantized = double{Fp4Decode(q.kind, code)} * scale;
          const double e = (row[i] - quantized) / u[i * k + i];
          err[i - b0] = e;
          for (int64_t j = i + 1; j < b1; ++j) row[j] -= e * u[i * k + j];
        }
        // Lazy update of the columns after the block.
        for (int64_t i = b0; i < b1; ++i) {
          const double e = err[i - b0];
          if (e == 0.0) continue;
          const double* ui = &u[i * k];
          for (int64_t j = b1; j < k; ++j) row[j] -= e * ui[j];
        }
      }
    }
  });
}

}  // namespace engine::quantizer
