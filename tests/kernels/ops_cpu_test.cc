// Every CPU kernel against its scalar reference (kernels/ref/ops_ref.h) on random inputs of
// awkward shapes. Float kernels use a data-derived bound: |cpu - ref| <= kRelTol * sum|terms|.
#include "kernels/cpu/ops_cpu.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/kernels/float_sum_bound.h"
#include "kernels/core/cpu_features.h"
#include "kernels/cpu/gemm_f32_tiles.h"
#include "kernels/ref/ops_ref.h"

namespace engine::kernels {
namespace {

constexpr uint32_t kSeed = 1234;
// float32 summation error bound per unit of sum|x_i * w_i| (a few ulps times log2(k) is far
// below this; a wrong index gives O(1) errors).
constexpr double kRelTol = 1e-5;

std::vector<float> Random(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(OpsCpuTest, MatMulMatchesReferenceOnAwkwardShapes) {
  ThreadPool pool(2);
  std::mt19937 rng(kSeed);
  struct Shape { int64_t m, n, k; };
  for (const Shape s : {Shape{1, 1, 1}, Shape{1, 7, 15}, Shape{3, 17, 33}, Shape{5, 64, 64},
                        Shape{17, 33, 130}, Shape{1, 250, 576}, Shape{70, 61, 129}}) {
    for (const bool with_bias : {false, true}) {
      SCOPED_TRACE(absl::StrCat("m=", s.m, " n=", s.n, " k=", s.k, " bias=", with_bias,
                                " seed=", kSeed));
      const std::vector<float> x = Random(s.m * s.k, rng), w = Random(s.n * s.k, rng),
                               bias = Random(s.n, rng);
      std::vector<float> got(s.m * s.n), want(s.m * s.n);
      const float* b = with_bias ? bias.data() : nullptr;
      MatMulF32(pool, x.data(), w.data(), b, got.data(), s.m, s.n, s.k);
      MatMulF32Ref(x.data(), w.data(), b, want.data(), s.m, s.n, s.k);
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.n; ++j) {
          double magnitude = 1.0;
          for (int64_t kk = 0; kk < s.k; ++kk) magnitude += std::abs(x[i * s.k + kk] * w[j * s.k + kk]);
          ASSERT_NEAR(got[i * s.n + j], want[i * s.n + j], kRelTol * magnitude)
              << "i=" << i << " j=" << j;
        }
      }
    }
  }
}

// The prefill path (m >= 8: gemm_internal::TiledMatMul reading the weights in place) is checked
// with FloatSumTolerance (float_sum_bound.h); small-integer data must match exactly.

enum class Data { kRandom, kSmallIntegers };

std::vector<float> RandomInts(int64_t n, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

// Runs `matmul` (y = x . w^T + bias, the signature of MatMulF32 less the pool) with and without
// bias against MatMulF32Ref.
template <typename MatMulFn>
void CheckAgainstReference(int64_t m, int64_t n, int64_t k, std::mt19937& rng, Data data,
                           const MatMulFn& matmul) {
  const bool exact = data == Data::kSmallIntegers;
  const std::vector<float> x = exact ? RandomInts(m * k, -2, 2, rng) : Random(m * k, rng);
  const std::vector<float> w = exact ? RandomInts(n * k, -4, 4, rng) : Random(n * k, rng);
  const std::vector<float> bias = exact ? RandomInts(n, -3, 3, rng) : Random(n, rng);
  std::vector<double> magnitude(static_cast<size_t>(m * n));  // sum |x w| per output
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t t = 0; t < k; ++t) sum += std::abs(double{x[i * k + t]} * w[j * k + t]);
      magnitude[i * n + j] = sum;
    }
  }
  for (const bool with_bias : {false, true}) {
    SCOPED_TRACE(absl::StrCat("m=", m, " n=", n, " k=", k, " bias=", with_bias));
    const float* b = with_bias ? bias.data() : nullptr;
    std::vector<float> got(static_cast<size_t>(m * n), NAN), want(static_cast<size_t>(m * n));
    matmul(x.data(), w.data(), b, got.data(), m, n, k);
    MatMulF32Ref(x.data(), w.data(), b, want.data(), m, n, k);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const double expected = want[i * n + j];
        const double tolerance =
            exact ? 0.0
                  : FloatSumTolerance(k, magnitude[i * n + j],
                                      std::abs(expected) + (with_bias ? std::abs(bias[j]) : 0.0));
        ASSERT_NEAR(got[i * n + j], expected, tolerance) << "i=" << i << " j=" << j;
      }
    }
  }
}

// n = 1 and 7 are fewer rows than one micro-kernel (copied, not read in place), 33 and 256 end
// in a partial micro-kernel; k = 2050 spans two k blocks of 2048; m = 33 ends in a chunk of one
// row, m = 100 in a half chunk.
TEST(OpsCpuTest, MatMulPrefillPathMatchesReference) {
  ThreadPool pool(2);
  std::mt19937 rng(kSeed);
  for (int64_t m : {32, 33, 100, 512}) {
    for (int64_t n : {1, 7, 33, 256}) {
      for (int64_t k : {2, 30, 130, 2050}) {
        CheckAgainstReference(m, n, k, rng, Data::kRandom,
                              [&](const float* x, const float* w, const float* b, float* y,
                                  int64_t m, int64_t n, int64_t k) {
                                MatMulF32(pool, x, w, b, y, m, n, k);
                              });
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Exact sums catch a missed or repeated term (a partial micro-kernel's overlap added twice, a k
// block lost) that the bound above, growing with k, could hide. 3 threads split rows unevenly.
TEST(OpsCpuTest, MatMulPrefillPathIsExactOnSmallIntegers) {
  ThreadPool pool(3);
  std::mt19937 rng(kSeed + 1);
  struct Shape { int64_t m, n, k; };
  for (const Shape s : {Shape{8, 13, 5}, Shape{40, 100, 2100}, Shape{33, 250, 4500},
                        Shape{17, 12, 130}, Shape{64, 11, 64}}) {
    CheckAgainstReference(s.m, s.n, s.k, rng, Data::kSmallIntegers,
                          [&](const float* x, const float* w, const float* b, float* y, int64_t m,
                              int64_t n, int64_t k) { MatMulF32(pool, x, w, b, y, m, n, k); });
    if (HasFatalFailure()) return;
  }
}

// The tiled GEMM behind both prefill paths, on every micro-kernel ISA this CPU has (MatMulF32
// only ever runs the best one) and both weight layouts (in place; loaded into scratch, as
// MatMulF16 does), and independent of the thread count.
TEST(OpsCpuTest, TiledMatMulEveryIsaAndLayoutMatchesReference) {
  const CpuFeatures f = DetectCpuFeatures();
  std::vector<gemm_internal::TileIsa> isas;
  if (f.avx2 && f.fma) isas.push_back(gemm_internal::TileIsa::kAvx2);
  if (f.avx512f) isas.push_back(gemm_internal::TileIsa::kAvx512);
  if (isas.empty()) GTEST_SKIP() << "no AVX2 + FMA";
  const auto copy = [](const void* data, int64_t index, int64_t count, float* dst) {
    std::memcpy(dst, static_cast<const float*>(data) + index, static_cast<size_t>(count) * 4);
  };
  ThreadPool pool1(1), pool3(3);
  std::mt19937 rng(kSeed + 2);
  struct Shape { int64_t m, n, k; };
  for (const gemm_internal::TileIsa isa : isas) {
    for (const bool in_place : {true, false}) {
      for (const Shape s : {Shape{1, 1, 1}, Shape{5, 7, 30}, Shape{20, 33, 257},
                            Shape{70, 130, 2050}, Shape{33, 6, 100}}) {
        SCOPED_TRACE(
            absl::StrCat("isa=", isa == gemm_internal::TileIsa::kAvx512 ? "avx512" : "avx2",
                         " in_place=", in_place));
        std::vector<float> y1;
        CheckAgainstReference(
            s.m, s.n, s.k, rng, Data::kRandom,
            [&](const float* x, const float* w, const float* b, float* y, int64_t m, int64_t n,
                int64_t k) {
              const gemm_internal::WeightRows rows = {w, in_place ? nullptr : +copy};
              gemm_internal::TiledMatMul(pool1, isa, x, rows, b, y, m, n, k);
              y1.assign(y, y + m * n);
              gemm_internal::TiledMatMul(pool3, isa, x, rows, b, y, m, n, k);
              for (int64_t i = 0; i < m * n; ++i) {
                ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(y1[i])) << i;
              }
            });
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(OpsCpuTest, RmsNormRopeSiluMatchReference) {
  std::mt19937 rng(kSeed);
  const int64_t m = 3, heads = 3, head_dim = 16, dim = heads * head_dim;
  const std::vector<float> x = Random(m * dim, rng), gamma = Random(dim, rng);
  std::vector<float> got(m * dim), want(m * dim);
  RmsNorm(x.data(), gamma.data(), got.data(), m, dim, 1e-5f);
  RmsNormRef(x.data(), gamma.data(), want.data(), m, dim, 1e-5f);
  for (int64_t i = 0; i < m * dim; ++i) ASSERT_NEAR(got[i], want[i], 1e-5) << i;

  const int32_t positions[m] = {0, 7, 511};
  for (const RopePairing pairing : {RopePairing::kInterleaved, RopePairing::kHalves}) {
    std::vector<float> a = x, b = x;
    RopeTable table;
    table.Compute(positions, m, head_dim, 10000.0f);
    Rope(a.data(), table, heads, head_dim, pairing);
    RopeRef(b.data(), positions, m, heads, head_dim, 10000.0f, pairing);
    for (int64_t i = 0; i < m * dim; ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
    // Position 0 is the identity.
    for (int64_t i = 0; i < dim; ++i) ASSERT_EQ(a[i], x[i]);
  }

  const std::vector<float> up = Random(m * dim, rng);
  SiluMul(x.data(), up.data(), got.data(), m * dim);
  SiluMulRef(x.data(), up.data(), want.data(), m * dim);
  for (int64_t i = 0; i < m * dim; ++i) ASSERT_NEAR(got[i], want[i], 1e-6) << i;
}

TEST(OpsCpuTest, AttentionMatchesReferenceWithGroupedHeads) {
  ThreadPool pool(2);
  std::mt19937 rng(kSeed);
  // head_dim 20 and 80 exercise the masked tails and the 64-wide chunking of the AVX-512 row;
  // positions past 16 keys exercise full and partial score vectors.
  struct Case { int64_t m, heads, kv_heads, head_dim, capacity, first_position; };
  for (const Case c : {Case{5, 6, 2, 20, 40, 10}, Case{3, 4, 4, 80, 64, 37},
                       Case{1, 9, 3, 64, 700, 640}, Case{7, 2, 1, 16, 8, 0}}) {
    SCOPED_TRACE(absl::StrCat("head_dim=", c.head_dim, " first_position=", c.first_position));
    const AttentionShape s{.m = c.m, .n_heads = c.heads, .n_kv_heads = c.kv_heads,
                           .head_dim = c.head_dim, .capacity = c.capacity};
    const std::vector<float> q = Random(s.m * s.n_heads * s.head_dim, rng);
    // Large-ish keys make the softmax peaky, which tests the max subtraction.
    std::vector<float> k = Random(s.n_kv_heads * s.capacity * s.head_dim, rng);
    for (float& x : k) x *= 4.0f;
    const std::vector<float> v = Random(s.n_kv_heads * s.capacity * s.head_dim, rng);
    std::vector<int32_t> positions(c.m);
    for (int64_t i = 0; i < c.m; ++i) positions[i] = static_cast<int32_t>(c.first_position + i);
    if (positions.back() >= c.capacity) positions.back() = static_cast<int32_t>(c.capacity - 1);
    std::vector<float> want(q.size());
    AttentionRef(q.data(), k.data(), v.data(), positions.data(), want.data(), s);
    for (AttentionPath path : SupportedAttentionPaths()) {
      std::vector<float> got(q.size());
      Attention(pool, q.data(), k.data(), v.data(), positions.data(), got.data(), s, path);
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_NEAR(got[i], want[i], 2e-5) << AttentionPathName(path) << " " << i;
      }
    }
  }
}

// The SIMD kernels score keys in blocks of 16 (AVX-512) or 8 (AVX2), the last, partial block on
// a zero-padded copy, and run up to a whole GQA group of query heads per task; these shapes
// cover block boundaries, head_dim tails, whole and split groups, and decode and prefill.
TEST(OpsCpuTest, AttentionMatchesReferenceAcrossKeyBlocksAndGroups) {
  std::mt19937 rng(kSeed);
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (int64_t head_dim : {64, 128, 48, 20}) {
      for (int64_t n_keys : {1, 15, 16, 17, 300}) {
        for (int64_t gqa : {1, 8}) {
          for (int64_t m : {1, 7}) {
            SCOPED_TRACE(absl::StrCat("threads=", threads, " head_dim=", head_dim, " n_keys=",
                                      n_keys, " gqa=", gqa, " m=", m));
            const AttentionShape s{.m = m, .n_heads = 2 * gqa, .n_kv_heads = 2,
                                   .head_dim = head_dim, .capacity = n_keys};
            const std::vector<float> q = Random(s.m * s.n_heads * s.head_dim, rng);
            std::vector<float> k = Random(s.n_kv_heads * s.capacity * s.head_dim, rng);
            for (float& x : k) x *= 4.0f;
            const std::vector<float> v = Random(s.n_kv_heads * s.capacity * s.head_dim, rng);
            // The last token sees all n_keys keys (the cache is exactly full, so any read past
            // it would leave the buffer); earlier tokens see fewer.
            std::vector<int32_t> positions(static_cast<size_t>(m));
            for (int64_t i = 0; i < m; ++i) {
              positions[i] = static_cast<int32_t>(std::max<int64_t>(0, n_keys - m + i));
            }
            std::vector<float> want(q.size());
            AttentionRef(q.data(), k.data(), v.data(), positions.data(), want.data(), s);
            for (AttentionPath path : SupportedAttentionPaths()) {
              std::vector<float> got(q.size());
              Attention(pool, q.data(), k.data(), v.data(), positions.data(), got.data(), s,
                        path);
              for (size_t i = 0; i < got.size(); ++i) {
                ASSERT_NEAR(got[i], want[i], 2e-5) << AttentionPathName(path) << " " << i;
              }
            }
          }
        }
      }
    }
  }
}

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 5, 1000}) {
      std::vector<int> hits(static_cast<size_t>(n), 0);
      pool.ParallelFor(n, [&](int, int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ++hits[static_cast<size_t>(i)];
      });
      for (int h : hits) ASSERT_EQ(h, 1);
    }
  }
}

}  // namespace
}  // namespace engine::kernels
