// W4A16: the reference (kernels/ref/w4a16_ref.h) against a hand-derived case, and the fast GEMM
// (kernels/cpu/w4a16_gemm.h, every ISA path this CPU has) against the reference for every FP4
// kind, with and without bias and accumulation, on awkward shapes.
#include "kernels/cpu/w4a16_gemm.h"

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/kernels/float_sum_bound.h"
#include "kernels/core/fp4.h"
#include "kernels/cpu/fp4_gemm.h"
#include "kernels/ref/w4a16_ref.h"
#include "tests/test_util.h"

namespace engine::kernels {
namespace {

constexpr Fp4Kind kKinds[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};

// Rows (E2M1 codes):  row 0 = [0.5, 1, -1, 6]  (codes 1, 2, A, 7), row_scale 2, bias 1
//                     row 1 = [1.5, 0, -0, -6] (codes 3, 0, 8, F), row_scale 0.5, bias -1
// x row 0 = [1, 2, 3, 4]:            y00 = 2 (0.5 + 2 - 3 + 24) + 1 = 48
//                                    y01 = 0.5 (1.5 - 24) - 1 = -12.25
// x row 1 = [-1, 0.5, 0.25, 0.125]:  y10 = 2 (-0.5 + 0.5 - 0.25 + 0.75) + 1 = 2
//                                    y11 = 0.5 (-1.5 - 0.75) - 1 = -2.125
// Element 2i of a row is the low nibble of byte i.
constexpr uint8_t kHandCodes[] = {0x21, 0x7A, 0x03, 0xF8};
constexpr float kHandScale[] = {2.0f, 0.5f};
constexpr float kHandBias[] = {1.0f, -1.0f};
constexpr float kHandX[] = {1.0f, 2.0f, 3.0f, 4.0f, -1.0f, 0.5f, 0.25f, 0.125f};

TEST(W4A16RefTest, HandDerivedCase) {
  float y[4] = {};
  W4A16LinearRef(kHandX, kHandCodes, kHandScale, kHandBias, Fp4Kind::kE2M1, 2, 2, 4, false, y);
  EXPECT_EQ(y[0], 48.0f);
  EXPECT_EQ(y[1], -12.25f);
  EXPECT_EQ(y[2], 2.0f);
  EXPECT_EQ(y[3], -2.125f);
  // Accumulate adds to the old y; no bias leaves the scaled sum.
  float acc[4] = {10.0f, 10.0f, 10.0f, 10.0f};
  W4A16LinearRef(kHandX, kHandCodes, kHandScale, nullptr, Fp4Kind::kE2M1, 2, 2, 4, true, acc);
  EXPECT_EQ(acc[0], 10.0f + 47.0f);
  EXPECT_EQ(acc[1], 10.0f - 11.25f);
  EXPECT_EQ(acc[2], 10.0f + 1.0f);
  EXPECT_EQ(acc[3], 10.0f - 1.125f);
  // The kind changes the decoded values: E3M0 row 0 = [0.25, 0.5, -0.5, 16],
  // y00 = 2 (0.25 + 1 - 1.5 + 64) + 1 = 128.5; E1M2 row 1 = [0.75, 0, -0, -1.75],
  // y11 = 0.5 (-0.75 - 0.21875) - 1 = -1.484375.
  W4A16LinearRef(kHandX, kHandCodes, kHandScale, kHandBias, Fp4Kind::kE3M0, 2, 2, 4, false, y);
  EXPECT_EQ(y[0], 128.5f);
  W4A16LinearRef(kHandX, kHandCodes, kHandScale, kHandBias, Fp4Kind::kE1M2, 2, 2, 4, false, y);
  EXPECT_EQ(y[3], -1.484375f);
}

TEST(W4A16GemmTest, PathsIncludeScalar) {
  const std::vector<W4A16Isa> isas = SupportedW4A16Isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), W4A16Isa::kScalar);
  std::string names;
  for (W4A16Isa isa : isas) names += std::string(W4A16IsaName(isa)) + " ";
  std::printf("w4a16 gemm paths on this CPU: %s\n", names.c_str());
}

TEST(W4A16GemmTest, HandDerivedCaseOnEveryPath) {
  ThreadPool pool(1);
  ASSERT_OK_AND_ASSIGN(const PreparedFp4Weight w,
                       PrepareFp4Weight(kHandCodes, kHandScale, kHandBias, Fp4Kind::kE2M1, 2, 4));
  for (W4A16Isa isa : SupportedW4A16Isas()) {
    float y[4] = {};
    W4A16Gemm(pool, {.x = kHandX, .w = &w, .y = y, .m = 2, .isa = isa});
    EXPECT_EQ(y[0], 48.0f) << W4A16IsaName(isa);
    EXPECT_EQ(y[1], -12.25f) << W4A16IsaName(isa);
    EXPECT_EQ(y[2], 2.0f) << W4A16IsaName(isa);
    EXPECT_EQ(y[3], -2.125f) << W4A16IsaName(isa);
  }
}

std::vector<float> RandomFloats(int64_t n, float lo, float hi, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Bound: the kernel sums k products Decode(w) x in float in its own order (within
// gamma_k * sum|terms|, gamma_k ~ k FLT_EPSILON / 2), then rounds once each for * row_scale,
// + bias and + y_old; the reference rounds its double value and its y_old add once each. With
// S = sum_t |row_scale * Decode(w_t) * x_t|:
//   |got - want| <= k * FLT_EPSILON * S + 2 * FLT_EPSILON * (S + |bias| + |y_old|)
// (FloatSumTolerance, float_sum_bound.h): every intermediate of the epilogue is at most
// S + |bias| + |y_old| in magnitude.

// Small integers (and power-of-two row scales): every decoded weight is a multiple of 1/4 of at
// most 16, so each product and partial sum is exact in float whatever the order and the kernels
// must reproduce the reference exactly. This catches a missed or repeated term that the
// summation bound (which grows with k) could hide when k is large.
std::vector<float> RandomInts(int64_t n, int lo, int hi, std::mt19937& rng) {
  std::uniform_int_distribution<int> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(dist(rng));
  return v;
}

enum class Data { kRandom, kSmallIntegers };

void CheckAllPaths(ThreadPool& pool, Fp4Kind kind, int64_t m, int64_t n, int64_t k,
                   std::mt19937& rng, Data data = Data::kRandom) {
  const bool exact = data == Data::kSmallIntegers;
  std::vector<uint8_t> codes(static_cast<size_t>(n * k / 2));
  for (uint8_t& c : codes) c = static_cast<uint8_t>(rng());
  const auto x = exact ? RandomInts(m * k, -2, 2, rng) : RandomFloats(m * k, -1.0f, 1.0f, rng);
  auto row_scale = RandomFloats(n, -0.5f, 0.5f, rng);
  if (exact) {
    for (float& s : row_scale) {  // +-1/2, +-1, +-2
      s = std::ldexp(rng() % 2 ? 1.0f : -1.0f, static_cast<int>(rng() % 3) - 1);
    }
  }
  const auto bias = exact ? RandomInts(n, -3, 3, rng) : RandomFloats(n, -2.0f, 2.0f, rng);
  const auto y_old =
      exact ? RandomInts(m * n, -9, 9, rng) : RandomFloats(m * n, -10.0f, 10.0f, rng);
  std::vector<double> magnitude(static_cast<size_t>(m * n));
  {
    std::vector<double> wd(static_cast<size_t>(k));
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t t = 0; t < k; ++t) {
        wd[t] = std::abs(double{row_scale[j]} * Fp4Decode(kind, E2M1At(&codes[j * k / 2], t)));
      }
      for (int64_t i = 0; i < m; ++i) {
        double s = 0.0;
        for (int64_t t = 0; t < k; ++t) s += wd[t] * std::abs(x[i * k + t]);
        magnitude[i * n + j] = s;
      }
    }
  }
  for (const bool with_bias : {false, true}) {
    const float* b = with_bias ? bias.data() : nullptr;
    ASSERT_OK_AND_ASSIGN(const PreparedFp4Weight w,
                         PrepareFp4Weight(codes.data(), row_scale.data(), b, kind, n, k));
    for (const bool accumulate : {false, true}) {
      std::vector<float> want = y_old;
      W4A16LinearRef(x.data(), codes.data(), row_scale.data(), b, kind, m, n, k, accumulate,
                     want.data());
      for (W4A16Isa isa : SupportedW4A16Isas()) {
        SCOPED_TRACE(absl::StrCat("isa=", W4A16IsaName(isa), " kind=", static_cast<int>(kind),
                                  " m=", m, " n=", n, " k=", k, " bias=", with_bias,
                                  " accumulate=", accumulate));
        std::vector<float> got = y_old;
        W4A16Gemm(pool, {.x = x.data(), .w = &w, .y = got.data(), .m = m,
                         .accumulate = accumulate, .isa = isa});
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            const double s = magnitude[i * n + j];
            const double tolerance =
                exact ? 0.0
                      : FloatSumTolerance(k, s,
                                          s + (with_bias ? std::abs(bias[j]) : 0.0) +
                                              (accumulate ? std::abs(y_old[i * n + j]) : 0.0));
            ASSERT_NEAR(got[i * n + j], want[i * n + j], tolerance) << "i=" << i << " j=" << j;
          }
        }
      }
    }
  }
}

TEST(W4A16GemmTest, EveryPathMatchesReferenceForEveryKindOnAwkwardShapes) {
  ThreadPool pool(2);
  std::mt19937 rng(11);
  for (Fp4Kind kind : kKinds) {
    for (int64_t m : {1, 3, 17, 64}) {
      for (int64_t n : {1, 7, 33, 256}) {
        for (int64_t k : {2, 6, 30, 130, 576, 1536}) {
          CheckAllPaths(pool, kind, m, n, k, rng);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(W4A16GemmTest, EveryPathIsExactOnSmallIntegers) {
  ThreadPool pool(2);
  std::mt19937 rng(13);
  for (Fp4Kind kind : kKinds) {
    for (int64_t m : {1, 5, 17}) {
      for (int64_t n : {1, 20, 100}) {
        for (int64_t k : {2, 30, 130, 2050, 4100}) {
          CheckAllPaths(pool, kind, m, n, k, rng, Data::kSmallIntegers);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Prefill size, and 3 threads splitting the 16-row tiles unevenly across several L2 blocks.
TEST(W4A16GemmTest, PrefillAndThreadedSizes) {
  ThreadPool pool(3);
  std::mt19937 rng(12);
  CheckAllPaths(pool, Fp4Kind::kE2M1, 512, 100, 2050, rng);
  if (HasFatalFailure()) return;
  CheckAllPaths(pool, Fp4Kind::kE1M2, 9, 1000, 4100, rng);
}

}  // namespace
}  // namespace engine::kernels
