// Tests of the W4A4 references (kernels/ref/w4a4_ref.h) against float64 dequantized math and
// hand-computed cases: the definition every fast kernel must reproduce bit for bit.
#include "kernels/ref/w4a4_ref.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/core/fp4.h"

namespace engine::kernels {
namespace {

constexpr Fp4Kind kKinds[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};

std::vector<uint8_t> RandomBytes(size_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(n);
  for (uint8_t& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// The dequantized product in float64: sum_t dec(a) * dec(w) is exact in double (few bits per
// term, k small), then the scales and bias with a single final rounding error source.
TEST(W4A4RefTest, MatchesFloat64DequantizedMathForAllFormatPairs) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> scale_dist(0.01f, 2.0f);
  std::uniform_real_distribution<float> sym(-1.0f, 1.0f);
  const int64_t m = 5, n = 11, k = 96;
  for (Fp4Kind a_kind : kKinds) {
    for (Fp4Kind w_kind : kKinds) {
      const auto a = RandomBytes(m * k / 2, rng), w = RandomBytes(n * k / 2, rng);
      std::vector<float> row_scale(n), bias(n), y(m * n);
      for (float& s : row_scale) s = scale_dist(rng) * (rng() % 2 ? 1.0f : -1.0f);
      for (float& b : bias) b = sym(rng);
      const float a_scale = scale_dist(rng);
      Fp4LinearRef({.a_codes = a.data(), .a_kind = a_kind, .a_scale = a_scale,
                    .w_codes = w.data(), .w_kind = w_kind, .row_scale = row_scale.data(),
                    .bias = bias.data(), .m = m, .n = n, .k = k, .y = y.data()});
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0.0;
          for (int64_t t = 0; t < k; ++t) {
            dot += double{Fp4Decode(a_kind, E2M1At(a.data() + i * k / 2, t))} *
                   double{Fp4Decode(w_kind, E2M1At(w.data() + j * k / 2, t))};
          }
          const double product = dot * a_scale * row_scale[j];
          const double expected = product + bias[j];
          // Two rounded multiplies (the int sum and the power-of-two factor are exact) and one
          // rounded add: a few float ulps of the magnitudes involved.
          const double tolerance = 4.0 * std::numeric_limits<float>::epsilon() *
                                   (std::fabs(product) + std::fabs(bias[j]));
          EXPECT_NEAR(y[i * n + j], expected, tolerance)
              << "a_kind=" << int(a_kind) << " w_kind=" << int(w_kind) << " i=" << i << " j=" << j;
        }
      }
    }
  }
}

TEST(W4A4RefTest, HandComputedExample) {
  // a = [1.5, -2] (E2M1 codes 0x3, 0xC); E3M0 weights: row 0 = [4, 0.25] (codes 0x5, 0x1),
  // row 1 = [-1, 16] (codes 0xB, 0x7).
  const uint8_t a[1] = {PackE2M1x2(0x3, 0xC)};
  const uint8_t w[2] = {PackE2M1x2(0x5, 0x1), PackE2M1x2(0xB, 0x7)};
  const float row_scale[2] = {0.5f, 2.0f};
  const float bias[2] = {1.0f, -3.0f};
  float y[2] = {};
  Fp4LinearRef({.a_codes = a, .a_kind = Fp4Kind::kE2M1, .a_scale = 0.25f, .w_codes = w,
                .w_kind = Fp4Kind::kE3M0, .row_scale = row_scale, .bias = bias, .m = 1, .n = 2,
                .k = 2, .y = y});
  // Row 0: (1.5 * 4 - 2 * 0.25) * 0.25 * 0.5 + 1 = 5.5 * 0.125 + 1 = 1.6875.
  EXPECT_EQ(y[0], 1.6875f);
  // Row 1: (1.5 * -1 - 2 * 16) * 0.25 * 2 - 3 = -33.5 * 0.5 - 3 = -19.75.
  EXPECT_EQ(y[1], -19.75f);
}

// accumulate is defined as y_old + (the non-accumulating value), one float add.
TEST(W4A4RefTest, AccumulateAddsTheValueToTheOldOutput) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> sym(-3.0f, 3.0f);
  const int64_t m = 4, n = 9, k = 40;
  const auto a = RandomBytes(m * k / 2, rng), w = RandomBytes(n * k / 2, rng);
  std::vector<float> row_scale(n), bias(n), y_old(m * n);
  for (float& s : row_scale) s = sym(rng);
  for (float& b : bias) b = sym(rng);
  for (float& v : y_old) v = sym(rng) * 100.0f;
  const float* no_bias = nullptr;
  for (const float* b : {no_bias, static_cast<const float*>(bias.data())}) {
    Fp4LinearArgs args = {.a_codes = a.data(), .a_kind = Fp4Kind::kE1M2, .a_scale = 0.37f,
                          .w_codes = w.data(), .w_kind = Fp4Kind::kE2M1,
                          .row_scale = row_scale.data(), .bias = b, .m = m, .n = n, .k = k};
    std::vector<float> value(m * n), acc = y_old;
    args.y = value.data();
    Fp4LinearRef(args);
    args.y = acc.data();
    args.accumulate = true;
    Fp4LinearRef(args);
    for (int64_t i = 0; i < m * n; ++i) EXPECT_EQ(acc[i], y_old[i] + value[i]) << "i=" << i;
  }
}

// Without a bias, -0 stays -0 (a bias of 0 would turn it into +0): the reference skips the add.
TEST(W4A4RefTest, NoBiasKeepsNegativeZero) {
  const uint8_t a[1] = {0x00}, w[1] = {0x00};
  const float row_scale[1] = {-1.0f};
  float y[1] = {1.0f};
  Fp4LinearRef({.a_codes = a, .a_kind = Fp4Kind::kE2M1, .a_scale = 1.0f, .w_codes = w,
                .w_kind = Fp4Kind::kE2M1, .row_scale = row_scale, .bias = nullptr, .m = 1,
                .n = 1, .k = 2, .y = y});
  EXPECT_EQ(std::bit_cast<uint32_t>(y[0]), 0x80000000u);
}

// The int32 accumulation is exact up to kW4A4MaxK: 64 * 64 * (2^19 - 2) = 2^31 - 8192.
TEST(W4A4RefTest, Int32AccumulationIsExactAtTheLargestK) {
  const int64_t k = kW4A4MaxK - 1;  // even
  ASSERT_EQ(k % 2, 0);
  const std::vector<uint8_t> a(k / 2, PackE2M1x2(0x7, 0x7));        // +16 (Int 64)
  std::vector<uint8_t> w(k, PackE2M1x2(0x7, 0x7));                  // row 0: +16
  std::fill(w.begin() + k / 2, w.end(), PackE2M1x2(0xF, 0xF));      // row 1: -16
  const float row_scale[2] = {1.0f, 1.0f};
  float y[2] = {};
  Fp4LinearRef({.a_codes = a.data(), .a_kind = Fp4Kind::kE3M0, .a_scale = 1.0f,
                .w_codes = w.data(), .w_kind = Fp4Kind::kE3M0, .row_scale = row_scale,
                .m = 1, .n = 2, .k = k, .y = y});
  const double exact = 256.0 * static_cast<double>(k);  // 16 * 16 * k = (2^31 - 8192) / 16
  EXPECT_EQ(static_cast<double>(y[0]), exact);
  EXPECT_EQ(static_cast<double>(y[1]), -exact);
}

TEST(W4A4RefTest, QuantizeActivationsRoundTripsCodesAndPacksEvenLow) {
  std::mt19937 rng(9);
  const int64_t m = 3, k = 64;
  for (Fp4Kind kind : kKinds) {
    for (float scale : {1.0f, 0.125f, 0.0371f, 3.3f}) {
      const auto codes = RandomBytes(m * k / 2, rng);
      std::vector<float> x(m * k);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t t = 0; t < k; ++t) {
          x[i * k + t] = Fp4Decode(kind, E2M1At(codes.data() + i * k / 2, t)) * scale;
        }
      }
      std::vector<uint8_t> out(m * k / 2);
      QuantizeActivationsRef(x.data(), m, k, kind, 1.0f / scale, out.data());
      EXPECT_EQ(out, codes) << "kind=" << int(kind) << " scale=" << scale;
    }
  }
  // Element 0 in the low nibble; the product x * inv_scale is what gets encoded.
  const float x[2] = {3.0f, -1.0f};
  uint8_t c = 0;
  QuantizeActivationsRef(x, 1, 2, Fp4Kind::kE2M1, 0.5f, &c);  // 1.5 -> 0x3, -0.5 -> 0x9
  EXPECT_EQ(c, 0x93);
}

}  // namespace
}  // namespace engine::kernels
