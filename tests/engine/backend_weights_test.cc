// ConvertToI8Rows (engine/backend_weights.h), the conversion of the W4A4 models' output head:
// each value within half a step of its row's grid, the row maximum on +-127, zero rows, and a
// clear error on non-finite weights.
#include "engine/backend_weights.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace engine {
namespace {

TEST(ConvertToI8RowsTest, EveryValueWithinHalfAStepOfItsRow) {
  const int64_t n = 37, k = 129;
  std::mt19937 rng(3);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (int64_t j = 0; j < n; ++j) {
    // Rows of very different magnitudes, so a shared scale would fail.
    std::normal_distribution<float> dist(0.0f, std::ldexp(1.0f, static_cast<int>(j % 9) - 4));
    for (int64_t t = 0; t < k; ++t) w[j * k + t] = dist(rng);
  }
  absl::StatusOr<I8Rows> rows = ConvertToI8Rows(w.data(), n, k, "head");
  ASSERT_TRUE(rows.ok()) << rows.status();
  for (int64_t j = 0; j < n; ++j) {
    float max_abs = 0.0f;
    for (int64_t t = 0; t < k; ++t) max_abs = std::max(max_abs, std::fabs(w[j * k + t]));
    const float scale = rows->scale[j];
    EXPECT_FLOAT_EQ(scale, max_abs / 127.0f) << "row " << j;
    int at_limit = 0;
    for (int64_t t = 0; t < k; ++t) {
      const int q = rows->q[j * k + t];
      ASSERT_GE(q, -127);
      ASSERT_LE(q, 127);
      at_limit += std::abs(q) == 127;
      // Half a step, plus the rounding of w / scale.
      EXPECT_LE(std::fabs(q * scale - w[j * k + t]), 0.5f * scale * (1.0f + 1e-5f))
          << "row " << j << " column " << t;
    }
    EXPECT_GE(at_limit, 1) << "row " << j << ": its largest value must map to +-127";
  }
}

TEST(ConvertToI8RowsTest, ZeroRowGetsScaleZero) {
  const std::vector<float> w = {0.0f, -0.0f, 0.0f, 1.0f, -2.0f, 0.5f};
  absl::StatusOr<I8Rows> rows = ConvertToI8Rows(w.data(), 2, 3, "head");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->scale[0], 0.0f);
  for (int t = 0; t < 3; ++t) EXPECT_EQ(rows->q[t], 0);
  EXPECT_EQ(rows->q[3], 64);  // 1 / (2 / 127) = 63.5, to even
  EXPECT_EQ(rows->q[4], -127);
  EXPECT_EQ(rows->q[5], 32);  // 31.75
}

TEST(ConvertToI8RowsTest, NonFiniteWeightIsAnError) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::infinity()}) {
    std::vector<float> w(12, 0.25f);
    w[7] = bad;
    testing::ExpectError(ConvertToI8Rows(w.data(), 3, 4, "output head").status(),
                         absl::StatusCode::kInvalidArgument,
                         {"output head", "row 1", "column 3", "finite"});
  }
}

}  // namespace
}  // namespace engine
