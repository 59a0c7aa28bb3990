// MatMulF16 (kernels/cpu/f16_matmul.h) is MatMulF32Ref on the widened weights: every ISA path
// this CPU has, decode (small m) and prefill (large m) sizes, awkward shapes, against the
// double-accumulating reference with a bound derived from the summation length.
#include "kernels/cpu/f16_matmul.h"

#include <bit>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/kernels/float_sum_bound.h"
#include "kernels/core/half.h"
#include "kernels/ref/ops_ref.h"

namespace engine::kernels {
namespace {


std::vector<float> RandomFloats(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Random halves in [-2, 2] (normal and a few subnormal values).
std::vector<uint16_t> RandomHalves(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (uint16_t& h : v) h = F32ToF16(dist(rng));
  for (size_t i = 0; i < v.size(); i += 97) v[i] = static_cast<uint16_t>(rng() & 0x83ff);
  return v;
}

// Small integers: every product and partial sum is exact in float whatever the order, so the
// kernels must reproduce the reference exactly. This catches a missed or repeated term that the
// summation bound above (which grows with k) could hide when k is large.
std::vector<float> RandomInts(int64_t n, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

enum class Data { kRandom, kSmallIntegers };

void CheckAllPaths(ThreadPool& pool, int64_t m, int64_t n, int64_t k, std::mt19937& rng,
                   Data data = Data::kRandom) {
  const bool exact = data == Data::kSmallIntegers;
  const std::vector<float> x = exact ? RandomInts(m * k, -2, 2, rng) : RandomFloats(m * k, rng);
  const std::vector<float> bias = exact ? RandomInts(n, -3, 3, rng) : RandomFloats(n, rng);
  std::vector<uint16_t> w = RandomHalves(n * k, rng);
  if (exact) {
    const std::vector<float> ints = RandomInts(n * k, -4, 4, rng);
    for (size_t i = 0; i < w.size(); ++i) w[i] = F32ToF16(ints[i]);
  }
  std::vector<float> wf(w.size());
  for (size_t i = 0; i < w.size(); ++i) wf[i] = F16ToF32(w[i]);
  // sum |x w| per output, shared by both bias settings.
  std::vector<double> magnitude(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t t = 0; t < k; ++t) s += std::abs(double{x[i * k + t]} * wf[j * k + t]);
      magnitude[i * n + j] = s;
    }
  }
  for (const bool with_bias : {false, true}) {
    const float* b = with_bias ? bias.data() : nullptr;
    std::vector<float> want(static_cast<size_t>(m * n));
    MatMulF32Ref(x.data(), wf.data(), b, want.data(), m, n, k);
    for (F16MatMulIsa isa : SupportedF16MatMulIsas()) {
      SCOPED_TRACE(absl::StrCat("isa=", F16MatMulIsaName(isa), " m=", m, " n=", n, " k=", k,
                                " bias=", with_bias));
      std::vector<float> got(static_cast<size_t>(m * n), NAN);
      MatMulF16(pool, x.data(), w.data(), b, got.data(), m, n, k, isa);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          const double expected = want[i * n + j];
          const double tolerance =
              exact ? 0.0
                    : FloatSumTolerance(
                          k, magnitude[i * n + j],
                          std::abs(expected) + (with_bias ? std::abs(bias[j]) : 0.0));
          ASSERT_NEAR(got[i * n + j], expected, tolerance) << "i=" << i << " j=" << j;
        }
      }
    }
  }
}

TEST(F16MatMulTest, PathsIncludeScalar) {
  const std::vector<F16MatMulIsa> isas = SupportedF16MatMulIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), F16MatMulIsa::kScalar);
  std::string names;
  for (F16MatMulIsa isa : isas) names += std::string(F16MatMulIsaName(isa)) + " ";
  std::printf("f16 matmul paths on this CPU: %s\n", names.c_str());
}

TEST(F16MatMulTest, EveryPathMatchesReferenceOnAwkwardShapes) {
  ThreadPool pool(2);
  std::mt19937 rng(7);
  for (int64_t m : {1, 3, 17, 64}) {
    for (int64_t n : {1, 7, 33, 256}) {
      for (int64_t k : {2, 6, 30, 130, 576, 1536}) {
        CheckAllPaths(pool, m, n, k, rng);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Prefill sizes (m >= 32): k past one outer k block (2048) with a partial last one, n not a
// multiple of the micro-kernel's rows; 3 threads split the rows unevenly.
TEST(F16MatMulTest, PrefillSizesWithSeveralKBlocks) {
  ThreadPool pool(3);
  std::mt19937 rng(8);
  CheckAllPaths(pool, 512, 100, 2100, rng);
  CheckAllPaths(pool, 33, 30, 4500, rng);  // last chunk of one row
  CheckAllPaths(pool, 40, 1000, 64, rng);
}

TEST(F16MatMulTest, EveryPathIsExactOnSmallIntegers) {
  ThreadPool pool(2);
  std::mt19937 rng(9);
  for (int64_t m : {1, 5, 17, 40}) {
    for (int64_t n : {1, 13, 100}) {
      for (int64_t k : {2, 30, 130, 2100, 4500}) {
        CheckAllPaths(pool, m, n, k, rng, Data::kSmallIntegers);
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Widening is exact for every finite half (normals, subnormals, both zeros): row j of w is
// (h_j, 0) and x = (1, 0), so y[j] = float(h_j) with no rounding at all, on the decode and the
// prefill path.
TEST(F16MatMulTest, WideningIsExactForEveryFiniteHalf) {
  std::vector<uint16_t> w;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if (((h >> 10) & 0x1f) != 0x1f) {
      w.push_back(static_cast<uint16_t>(h));
      w.push_back(0);
    }
  }
  const int64_t n = static_cast<int64_t>(w.size() / 2);
  ThreadPool pool(2);
  for (const int64_t m : {1, 16}) {
    std::vector<float> x(static_cast<size_t>(2 * m), 0.0f);
    for (int64_t i = 0; i < m; ++i) x[2 * i] = 1.0f;
    for (F16MatMulIsa isa : SupportedF16MatMulIsas()) {
      std::vector<float> y(static_cast<size_t>(m * n));
      MatMulF16(pool, x.data(), w.data(), nullptr, y.data(), m, n, 2, isa);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          const float expected = F16ToF32(w[2 * j]) + 0.0f;  // -0 * 1 + 0 * 0 sums to +0
          ASSERT_EQ(std::bit_cast<uint32_t>(y[i * n + j]), std::bit_cast<uint32_t>(expected))
              << F16MatMulIsaName(isa) << " m=" << m << " half=0x" << std::hex << w[2 * j];
        }
      }
    }
  }
}

TEST(F16MatMulTest, EmptyShapesAndZeroK) {
  ThreadPool pool(2);
  const float bias[3] = {1.0f, -2.0f, 0.5f};
  for (F16MatMulIsa isa : SupportedF16MatMulIsas()) {
    MatMulF16(pool, nullptr, nullptr, nullptr, nullptr, 0, 3, 4, isa);  // m = 0: nothing
    std::vector<float> y(6, NAN);
    MatMulF16(pool, nullptr, nullptr, bias, y.data(), 2, 3, 0, isa);  // k = 0: y = bias
    for (int i = 0; i < 6; ++i) EXPECT_EQ(y[i], bias[i % 3]) << F16MatMulIsaName(isa);
  }
}

}  // namespace
}  // namespace engine::kernels
