#include "kernels/cpu/fp4_producers.h"

#include <vector>

#include "kernels/core/status_macros.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/cpu/ops_cpu.h"

namespace engine::kernels {
namespace {

// Rows per thread below which splitting costs more than it saves (one decode token runs on
// the caller alone).
constexpr int64_t kMinRowsPerThread = 2;

// Splits [0, m) across the pool when there are rows enough.
void SplitRows(ThreadPool& pool, int64_t m, const ThreadPool::RangeFn& rows) {
  if (m >= kMinRowsPerThread * pool.num_threads()) {
    pool.ParallelFor(m, rows);
  } else {
    rows(0, 0, m);
  }
}

// Calls produce(row, buffer) for every row, rows split across the pool, then quantizes the
// buffer (one row of `dim` floats, private to the thread) into the row's codes.
template <typename Produce>
void ForEachRow(ThreadPool& pool, int64_t m, int64_t dim, const Fp4Output& out,
                const Produce& produce) {
  ENGINE_CHECK(dim % 2 == 0 && out.codes != nullptr);
  SplitRows(pool, m, [&](int, int64_t begin, int64_t end) {
    thread_local std::vector<float> buffer;
    if (buffer.size() < static_cast<size_t>(dim)) buffer.resize(static_cast<size_t>(dim));
    for (int64_t i = begin; i < end; ++i) {
      produce(i, buffer.data());
      QuantizeActivations(buffer.data(), 1, dim, out.kind, out.inv_scale,
                          out.codes + i * (dim / 2));
    }
  });
}

}  // namespace

void RmsNormToFp4(ThreadPool& pool, const float* x, const float* gamma, int64_t m, int64_t dim,
                  float eps, const Fp4Output& out) {
  ForEachRow(pool, m, dim, out, [&](int64_t i, float* row) {
    RmsNorm(x + i * dim, gamma, row, 1, dim, eps);
  });
}

void SiluMulToFp4(ThreadPool& pool, const float* gate, const float* up, int64_t m, int64_t dim,
                  const Fp4Output& out) {
  ForEachRow(pool, m, dim, out, [&](int64_t i, float* row) {
    SiluMul(gate + i * dim, up + i * dim, row, dim);
  });
}

void QuantizeToFp4(ThreadPool& pool, const float* x, int64_t m, int64_t dim,
                   const Fp4Output& out) {
  ENGINE_CHECK(dim % 2 == 0 && out.codes != nullptr);
  SplitRows(pool, m, [&](int, int64_t begin, int64_t end) {
    QuantizeActivations(x + begin * dim, end - begin, dim, out.kind, out.inv_scale,
                        out.codes + begin * (dim / 2));
  });
}

}  // namespace engine::kernels
