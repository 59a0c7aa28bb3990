// The search never does worse than round-to-nearest min-max on its own objective (min-max is
// one of its candidates), and it finds the better format when one clearly fits the data.
#include "quantizer/format_search.h"

#include <random>

#include "gtest/gtest.h"

namespace engine::quantizer {
namespace {

constexpr uint32_t kSeed = 11;

std::vector<float> Gaussian(size_t n, float sigma, std::mt19937& rng) {
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(FormatSearchTest, WeightSearchIsNeverWorseThanMinMax) {
  kernels::ThreadPool pool(2);
  std::mt19937 rng(kSeed);
  const int64_t n = 48, k = 96;
  std::vector<float> w = Gaussian(n * k, 1.0f, rng);
  w[5] = 9.0f;  // an outlier makes min-max clipping wasteful
  const std::vector<float> importance(k, 1.0f);
  const Fp4Kind e2m1[] = {Fp4Kind::kE2M1};
  const Fp4Kind all[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};
  const WeightSearchResult rtn = SearchWeightQuantization(pool, w.data(), n, k, e2m1, importance, false);
  const WeightSearchResult clip = SearchWeightQuantization(pool, w.data(), n, k, e2m1, importance, true);
  const WeightSearchResult full = SearchWeightQuantization(pool, w.data(), n, k, all, importance, true);
  EXPECT_LE(clip.relative_error, rtn.relative_error);
  EXPECT_LE(full.relative_error, clip.relative_error);
  EXPECT_LT(clip.mean_clip_ratio, 1.0f);
}

TEST(FormatSearchTest, ActivationSearchIsNeverWorseThanMinMaxAndPicksAFittingFormat) {
  kernels::ThreadPool pool(2);
  std::mt19937 rng(kSeed);
  const int64_t rows = 64, k = 32, n = 16;
  // Log-uniform magnitudes over 4 octaves suit E3M0 (powers of two) better than E2M1.
  std::uniform_real_distribution<float> octave(-4.0f, 0.0f);
  std::vector<float> x(rows * k);
  float absmax = 0.0f;
  for (float& v : x) {
    v = std::exp2(std::round(octave(rng))) * (rng() % 2 ? 1.0f : -1.0f);
    absmax = std::max(absmax, std::abs(v));
  }
  const std::vector<float> w = Gaussian(n * k, 1.0f, rng);
  const Consumer consumer{.w_full = w.data(), .w_quantized = w.data(), .n = n};
  const Fp4Kind e2m1[] = {Fp4Kind::kE2M1};
  const Fp4Kind all[] = {Fp4Kind::kE2M1, Fp4Kind::kE3M0, Fp4Kind::kE1M2};
  const ActSearchResult minmax =
      SearchActivationQuantization(pool, x.data(), rows, k, absmax, {&consumer, 1}, e2m1, false);
  const ActSearchResult best =
      SearchActivationQuantization(pool, x.data(), rows, k, absmax, {&consumer, 1}, all, true);
  EXPECT_LE(best.relative_error, minmax.relative_error);
  EXPECT_EQ(best.kind, Fp4Kind::kE3M0);
  EXPECT_EQ(best.relative_error, 0.0);  // powers of two from 1/16 to 1 are exact in E3M0
}

}  // namespace
}  // namespace engine::quantizer
