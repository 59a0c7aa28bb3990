// MatMulI8 (kernels/cpu/f16_matmul.h) is MatMulI8Ref (kernels/ref/ops_ref.h): every ISA path
// this CPU has, decode (small m) and prefill (large m) sizes, awkward shapes, against the
// double-accumulating reference with a bound derived from the summation length; exactly where
// every partial sum is exact in float.
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/cpu/f16_matmul.h"
#include "kernels/ref/ops_ref.h"
#include "tests/kernels/float_sum_bound.h"

namespace engine::kernels {
namespace {

enum class Data { kRandom, kSmallIntegers };

struct Problem {
  std::vector<float> x, scale, bias;
  std::vector<int8_t> q;
};

// kRandom: x in [-1, 1], every int8 value (-128 included, which the quantizer never writes but
// the kernel must still read right), scales in [0.001, 0.01]. kSmallIntegers: x and bias small
// integers, |q| <= 4, scales powers of two: every partial sum is exact in float in any order.
Problem MakeProblem(int64_t m, int64_t n, int64_t k, Data data, std::mt19937& rng) {
  Problem p;
  const bool exact = data == Data::kSmallIntegers;
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-2, 2), weight(exact ? -4 : -128, exact ? 4 : 127);
  p.x.resize(static_cast<size_t>(m * k));
  for (float& v : p.x) v = exact ? static_cast<float>(small(rng)) : unit(rng);
  p.q.resize(static_cast<size_t>(n * k));
  for (int8_t& v : p.q) v = static_cast<int8_t>(weight(rng));
  p.scale.resize(static_cast<size_t>(n));
  for (float& s : p.scale) {
    s = exact ? std::ldexp(1.0f, small(rng)) : 0.001f + 0.009f * std::fabs(unit(rng));
  }
  p.bias.resize(static_cast<size_t>(n));
  for (float& b : p.bias) b = exact ? static_cast<float>(small(rng)) : unit(rng);
  return p;
}

void CheckAllPaths(ThreadPool& pool, int64_t m, int64_t n, int64_t k, std::mt19937& rng,
                   Data data = Data::kRandom) {
  const bool exact = data == Data::kSmallIntegers;
  const Problem p = MakeProblem(m, n, k, data, rng);
  for (const bool with_bias : {false, true}) {
    const float* b = with_bias ? p.bias.data() : nullptr;
    std::vector<float> want(static_cast<size_t>(m * n));
    MatMulI8Ref(p.x.data(), p.q.data(), p.scale.data(), b, want.data(), m, n, k);
    for (F16MatMulIsa isa : SupportedF16MatMulIsas()) {
      SCOPED_TRACE(absl::StrCat("isa=", F16MatMulIsaName(isa), " m=", m, " n=", n, " k=", k,
                                " bias=", with_bias));
      std::vector<float> got(static_cast<size_t>(m * n), NAN);
      MatMulI8(pool, p.x.data(), p.q.data(), p.scale.data(), b, got.data(), m, n, k, isa);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double magnitude = 0.0;
          for (int64_t t = 0; t < k; ++t) {
            magnitude += std::abs(double{p.x[i * k + t]} * p.q[j * k + t]) * p.scale[j];
          }
          const double expected = want[i * n + j];
          const double tolerance =
              exact ? 0.0
                    : FloatSumTolerance(k, magnitude,
                                        std::abs(expected) + (with_bias ? std::abs(p.bias[j]) : 0));
          ASSERT_NEAR(got[i * n + j], expected, tolerance) << "i=" << i << " j=" << j;
        }
      }
    }
  }
}

TEST(I8MatMulTest, EveryPathMatchesReferenceOnAwkwardShapes) {
  ThreadPool pool(2);
  std::mt19937 rng(17);
  for (int64_t m : {1, 3, 17, 40}) {
    for (int64_t n : {1, 7, 33, 130}) {
      // k: below one vector, odd, a partial cache line, several lines plus a tail.
      for (int64_t k : {1, 6, 30, 100, 130, 576, 1029}) {
        CheckAllPaths(pool, m, n, k, rng);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Prefill sizes (m >= 32): k past one outer k block (2048) with a partial last one; 3 threads
// split the rows unevenly.
TEST(I8MatMulTest, PrefillSizesWithSeveralKBlocks) {
  ThreadPool pool(3);
  std::mt19937 rng(18);
  CheckAllPaths(pool, 512, 100, 2100, rng);
  CheckAllPaths(pool, 33, 30, 4500, rng);
}

TEST(I8MatMulTest, EveryPathIsExactOnSmallIntegers) {
  ThreadPool pool(2);
  std::mt19937 rng(19);
  for (int64_t m : {1, 5, 17, 40}) {
    for (int64_t n : {1, 13, 100}) {
      for (int64_t k : {2, 30, 130, 2100, 4500}) {
        CheckAllPaths(pool, m, n, k, rng, Data::kSmallIntegers);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Every int8 value widens exactly: row j of q is (v_j, 0) with scale 1 and x = (1, 0), so
// y[j] = v_j exactly, on the decode and the prefill path.
TEST(I8MatMulTest, WideningIsExactForEveryValue) {
  std::vector<int8_t> q;
  for (int v = -128; v <= 127; ++v) {
    q.push_back(static_cast<int8_t>(v));
    q.push_back(0);
  }
  const int64_t n = 256;
  const std::vector<float> scale(n, 1.0f);
  ThreadPool pool(2);
  for (const int64_t m : {1, 40}) {
    std::vector<float> x(static_cast<size_t>(2 * m), 0.0f);
    for (int64_t i = 0; i < m; ++i) x[2 * i] = 1.0f;
    for (F16MatMulIsa isa : SupportedF16MatMulIsas()) {
      std::vector<float> y(static_cast<size_t>(m * n), NAN);
      MatMulI8(pool, x.data(), q.data(), scale.data(), nullptr, y.data(), m, n, 2, isa);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          ASSERT_EQ(y[i * n + j], static_cast<float>(q[2 * j]))
              << F16MatMulIsaName(isa) << " m=" << m << " j=" << j;
        }
      }
    }
  }
}

TEST(I8MatMulTest, EmptyShapesAndZeroK) {
  ThreadPool pool(2);
  const float bias[3] = {1.0f, -2.0f, 0.5f}, scale[3] = {2.0f, 3.0f, 4.0f};
  for (F16MatMulIsa isa : SupportedF16MatMulIsas()) {
    MatMulI8(pool, nullptr, nullptr, scale, nullptr, nullptr, 0, 3, 4, isa);  // m = 0: nothing
    std::vector<float> y(6, NAN);
    MatMulI8(pool, nullptr, nullptr, scale, bias, y.data(), 2, 3, 0, isa);  // k = 0: y = bias
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], bias[i % 3]) << F16MatMulIsaName(isa);
  }
}

}  // namespace
}  // namespace engine::kernels
