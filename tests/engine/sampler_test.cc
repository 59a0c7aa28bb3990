// Tests of engine::Sampler: greedy ties, seeding, each filter's support, the empirical
// distribution against softmax, the repetition penalty and NaN/inf logits. All draws are seeded.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace engine {
namespace {

using ::testing::HasSubstr;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Only the filters a test names are on.
SamplingParams Plain(float temperature) {
  return SamplingParams{.temperature = temperature,
                        .top_k = 0,
                        .top_p = 1.0f,
                        .min_p = 0.0f,
                        .repeat_penalty = 1.0f,
                        .repeat_last_n = 64,
                        .seed = 0,
                        .max_new_tokens = 1};
}

// Uniform logits in [-range, range) from mt19937, whose raw output the standard fixes.
std::vector<float> RandomLogits(size_t n, uint32_t seed, float range) {
  std::mt19937 gen(seed);
  std::vector<float> logits(n);
  for (float& l : logits) {
    l = (static_cast<float>(gen() >> 8) * 0x1.0p-24f * 2.0f - 1.0f) * range;
  }
  return logits;
}

std::vector<float> LogsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

std::vector<int> Histogram(Sampler& sampler, const std::vector<float>& logits,
                           const SamplingParams& params, int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    const TokenId t = sampler.Sample(logits, params, {});
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<TokenId>(logits.size()));
    if (t >= 0 && t < static_cast<TokenId>(logits.size())) ++counts[static_cast<size_t>(t)];
  }
  return counts;
}

TEST(Xoshiro256Test, MatchesReferenceAlgorithm) {
  // Expected values from an independent Python transcription of the reference C code of
  // splitmix64 and xoshiro256** (prng.di.unimi.it). 0xe220a8397b1dcdaf is also the widely
  // published first splitmix64 output for state 0, i.e. xoshiro's first state word.
  Xoshiro256 rng(0);
  EXPECT_EQ(rng.Next(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(rng.Next(), 0xbf6e1f784956452aull);
  EXPECT_EQ(rng.Next(), 0x1a5f849d4933e6e0ull);
  EXPECT_EQ(rng.Next(), 0x6aa594f1262d2d2cull);
  rng.Seed(12345);
  EXPECT_EQ(rng.Next(), 0xbe6a36374160d49bull);
  EXPECT_EQ(rng.Next(), 0x214aaa0637a688c6ull);
}

TEST(Xoshiro256Test, NextDoubleIsInUnitInterval) {
  Xoshiro256 rng(99);
  double sum = 0.0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const double u = rng.NextDouble();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.005);  // sd of the mean is 0.0009
}

TEST(SamplerTest, GreedyPicksArgmax) {
  Sampler sampler(1);
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 1.5f};
  EXPECT_EQ(sampler.Sample(logits, Plain(0.0f), {}), 1);
  EXPECT_EQ(sampler.Sample(logits, Plain(-1.0f), {}), 1);  // negative = greedy
  EXPECT_EQ(sampler.Sample(logits, Plain(kNan), {}), 1);   // NaN = greedy, not a crash
}

TEST(SamplerTest, GreedyTiesGoToLowestId) {
  Sampler sampler(1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}, Plain(0.0f), {}), 1);
  EXPECT_EQ(sampler.Sample(std::vector<float>{5.0f, 5.0f, 5.0f}, Plain(0.0f), {}), 0);
}

TEST(SamplerTest, GreedyConsumesNoRandomness) {
  Sampler a(7);
  Sampler b(7);
  const std::vector<float> logits = RandomLogits(100, 3, 4.0f);
  for (int i = 0; i < 10; ++i) a.Sample(logits, Plain(0.0f), {});
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(a.Sample(logits, Plain(1.0f), {}), b.Sample(logits, Plain(1.0f), {}));
  }
}

TEST(SamplerTest, MatchesIndependentReferenceDraws) {
  // logits {0,1,2,3}, temperature 1, no filter, seed 7: the draws of an independent Python
  // transcription (u = (next >> 11) * 2^-53 * sum of exp(l - max), walked in id order). Pins
  // the exact, platform-independent token sequence.
  Sampler sampler(7);
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f, 3.0f};
  const std::vector<TokenId> expected = {3, 2, 3, 3, 3, 3, 1, 1, 3, 2, 3, 3,
                                         3, 3, 3, 3, 2, 3, 2, 2, 2, 3, 3, 2};
  std::vector<TokenId> got;
  for (size_t i = 0; i < expected.size(); ++i)
    got.push_back(sampler.Sample(logits, Plain(1.0f), {}));
  EXPECT_EQ(got, expected);
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedDifferent) {
  const std::vector<float> logits = RandomLogits(1000, 11, 3.0f);
  const SamplingParams params;  // the defaults: top-k 40, top-p 0.95, min-p 0.05, T 0.8
  Sampler a(42);
  Sampler b(42);
  Sampler c(43);
  std::vector<TokenId> sa, sb, sc;
  for (int i = 0; i < 1000; ++i) {
    sa.push_back(a.Sample(logits, params, {}));
    sb.push_back(b.Sample(logits, params, {}));
    sc.push_back(c.Sample(logits, params, {}));
  }
  EXPECT_EQ(sa, sb);
  int differ = 0;
  for (size_t i = 0; i < sa.size(); ++i) differ += sa[i] != sc[i];
  EXPECT_GT(differ, 500) << "seeds 42 and 43 gave nearly the same sequence";

  a.Reseed(42);
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(a.Sample(logits, params, {}), sa[i]) << i;
}

TEST(SamplerTest, TopKOneEqualsGreedy) {
  for (uint32_t trial = 0; trial < 50; ++trial) {
    SCOPED_TRACE(trial);
    const std::vector<float> logits = RandomLogits(500, trial, 5.0f);
    const std::vector<TokenId> history = {3, 17, 42, static_cast<TokenId>(trial)};
    SamplingParams greedy = Plain(0.0f);
    greedy.repeat_penalty = 1.3f;
    SamplingParams top1 = Plain(1.5f);
    top1.top_k = 1;
    top1.top_p = 0.5f;
    top1.repeat_penalty = 1.3f;
    Sampler sampler(trial);
    const TokenId want = sampler.Sample(logits, greedy, history);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(sampler.Sample(logits, top1, history), want);
  }
}

TEST(SamplerTest, TopKKeepsOnlyTheKBest) {
  // Tokens 5, 2 and 7 are the three best; ids are shuffled so the set is no prefix of ids.
  const std::vector<float> logits = {0.0f, 0.1f, 2.0f, -1.0f, 0.2f, 3.0f, 0.3f, 1.0f};
  SamplingParams params = Plain(2.0f);
  params.top_k = 3;
  Sampler sampler(5);
  const std::vector<int> counts = Histogram(sampler, logits, params, 10000);
  for (size_t id = 0; id < logits.size(); ++id) {
    if (id == 5 || id == 2 || id == 7) {
      EXPECT_GT(counts[id], 0) << id;
    } else {
      EXPECT_EQ(counts[id], 0) << id;
    }
  }
}

TEST(SamplerTest, TopPReturnsOnlyTheNucleus) {
  // p = {0.0625, 0.5, 0.0625, 0.125, 0.25}: the sorted cumulative mass is 0.5, 0.75, 0.875, ...
  // so top_p 0.8 keeps ids {1, 4, 3} and top_p 0.7 keeps {1, 4}.
  const std::vector<float> logits = LogsOf({0.0625, 0.5, 0.0625, 0.125, 0.25});
  for (const auto& [top_p, nucleus] :
       std::vector<std::pair<float, std::vector<size_t>>>{{0.8f, {1, 4, 3}}, {0.7f, {1, 4}}}) {
    SCOPED_TRACE(top_p);
    SamplingParams params = Plain(1.0f);
    params.top_p = top_p;
    Sampler sampler(17);
    const std::vector<int> counts = Histogram(sampler, logits, params, 10000);
    for (size_t id = 0; id < logits.size(); ++id) {
      const bool in = std::find(nucleus.begin(), nucleus.end(), id) != nucleus.end();
      if (in) {
        EXPECT_GT(counts[id], 0) << id;
      } else {
        EXPECT_EQ(counts[id], 0) << id;
      }
    }
    // Within the nucleus, the mass is renormalized: id 1 has 0.5 / (nucleus mass).
    const double nucleus_mass = top_p > 0.75f ? 0.875 : 0.75;
    EXPECT_NEAR(counts[1] / 10000.0, 0.5 / nucleus_mass, 0.02);
  }
}

TEST(SamplerTest, TopPZeroKeepsOnlyTheTopToken) {
  const std::vector<float> logits = RandomLogits(300, 8, 1.0f);
  Sampler sampler(3);
  const TokenId want = sampler.Sample(logits, Plain(0.0f), {});
  SamplingParams params = Plain(1.0f);
  params.top_p = 0.0f;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(logits, params, {}), want);
}

TEST(SamplerTest, MinPFiltersRelativeToTheTopProbability) {
  // min_p 0.2 of p_max 0.4 is 0.08: ids {0, 2, 4} (0.3, 0.4, 0.2) stay, 0.06 and 0.04 go.
  const std::vector<float> logits = LogsOf({0.3, 0.06, 0.4, 0.04, 0.2});
  SamplingParams unsorted = Plain(1.0f);  // no top-k/top-p: the filter runs on unsorted ids
  unsorted.min_p = 0.2f;
  SamplingParams sorted = unsorted;  // after top-k: the filter runs on a sorted prefix
  sorted.top_k = 4;
  for (const SamplingParams& params : {unsorted, sorted}) {
    SCOPED_TRACE(params.top_k);
    Sampler sampler(23);
    const std::vector<int> counts = Histogram(sampler, logits, params, 10000);
    EXPECT_GT(counts[0], 0);
    EXPECT_EQ(counts[1], 0);
    EXPECT_GT(counts[2], 0);
    EXPECT_EQ(counts[3], 0);
    EXPECT_GT(counts[4], 0);
    EXPECT_NEAR(counts[2] / 10000.0, 0.4 / 0.9, 0.02);
  }
}

TEST(SamplerTest, FrequenciesFollowTheTemperedSoftmax) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.0f, 1.2f, -0.3f, 1.9f, -2.5f};
  for (const float temperature : {0.7f, 1.0f, 2.5f}) {
    SCOPED_TRACE(temperature);
    double max = -1e30;
    for (float l : logits) max = std::max(max, static_cast<double>(l));
    std::vector<double> expected;
    double z = 0.0;
    for (float l : logits) {
      expected.push_back(std::exp((l - max) / temperature));
      z += expected.back();
    }
    constexpr int kDraws = 100000;
    Sampler sampler(31);
    const std::vector<int> counts = Histogram(sampler, logits, Plain(temperature), kDraws);
    double chi2 = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) {
      const double e = kDraws * expected[i] / z;
      chi2 += (counts[i] - e) * (counts[i] - e) / e;
    }
    // 7 degrees of freedom: P(chi2 > 24.32) = 0.001 for a correct sampler.
    EXPECT_LT(chi2, 24.32);
  }
}

TEST(SamplerTest, RepetitionPenaltyChangesTheArgmax) {
  Sampler sampler(1);
  SamplingParams params = Plain(0.0f);
  params.repeat_penalty = 1.1f;
  const std::vector<TokenId> recent = {0};
  // Positive logit divided: 2.0 / 1.1 = 1.82 < 1.9.
  const std::vector<float> positive = {2.0f, 1.9f, 0.5f};
  EXPECT_EQ(sampler.Sample(positive, Plain(0.0f), recent), 0);
  EXPECT_EQ(sampler.Sample(positive, params, recent), 1);
  // Negative logit multiplied: -1.0 * 1.1 = -1.1 < -1.05.
  const std::vector<float> negative = {-1.0f, -1.05f, -3.0f};
  EXPECT_EQ(sampler.Sample(negative, Plain(0.0f), recent), 0);
  EXPECT_EQ(sampler.Sample(negative, params, recent), 1);
}

TEST(SamplerTest, RepetitionPenaltyWindowAndOncePerToken) {
  Sampler sampler(1);
  const std::vector<float> logits = {2.0f, 1.7f, 0.0f};
  SamplingParams params = Plain(0.0f);
  params.repeat_penalty = 1.1f;
  // Token 0 three times is penalized once: 2.0 / 1.1 = 1.82 > 1.7 (thrice would be 1.50).
  EXPECT_EQ(sampler.Sample(logits, params, std::vector<TokenId>{0, 0, 0}), 0);
  params.repeat_penalty = 1.2f;  // 2.0 / 1.2 = 1.67 < 1.7
  const std::vector<TokenId> recent = {0, 2, 2};
  params.repeat_last_n = 2;  // window {2, 2}: token 0 is outside it
  EXPECT_EQ(sampler.Sample(logits, params, recent), 0);
  params.repeat_last_n = 3;
  EXPECT_EQ(sampler.Sample(logits, params, recent), 1);
  params.repeat_last_n = -1;  // whole history
  EXPECT_EQ(sampler.Sample(logits, params, recent), 1);
  params.repeat_last_n = 0;  // off
  EXPECT_EQ(sampler.Sample(logits, params, recent), 0);
  // Ids outside the vocabulary are ignored, not a crash.
  params.repeat_last_n = 64;
  EXPECT_EQ(sampler.Sample(logits, params, std::vector<TokenId>{-5, 3, 1000000}), 0);
}

TEST(SamplerTest, NanLogitsAreNegativeInfinity) {
  Sampler sampler(9);
  // NaN is never chosen, by greedy or by sampling, even at a high temperature.
  const std::vector<float> logits = {kNan, 1.0f, 0.5f, kNan};
  EXPECT_EQ(sampler.Sample(logits, Plain(0.0f), {}), 1);
  SamplingParams hot = Plain(5.0f);
  const std::vector<int> counts = Histogram(sampler, logits, hot, 2000);
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
  // With the default filters on, too.
  const std::vector<int> counts2 = Histogram(sampler, logits, SamplingParams{}, 2000);
  EXPECT_EQ(counts2[0] + counts2[3], 0);
  // One finite token among NaN and -inf is the only possible draw.
  const std::vector<float> one = {kNan, -kInf, kNan, -3.0f};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(one, hot, {}), 3);
}

TEST(SamplerTest, AllInvalidLogitsGiveTokenZero) {
  Sampler sampler(9);
  const std::vector<float> logits = {kNan, -kInf, kNan};
  EXPECT_EQ(sampler.Sample(logits, Plain(0.0f), {}), 0);
  EXPECT_EQ(sampler.Sample(logits, Plain(1.0f), {}), 0);
  EXPECT_EQ(sampler.Sample(logits, SamplingParams{}, {}), 0);
}

TEST(SamplerTest, PositiveInfinityDominates) {
  Sampler sampler(4);
  const std::vector<float> one = {1.0f, kInf, 3.0f};
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.Sample(one, SamplingParams{}, {}), 1);
  // Two +inf tokens share the mass (no NaN from inf - inf).
  const std::vector<float> two = {kInf, 1.0f, kInf};
  const std::vector<int> counts = Histogram(sampler, two, SamplingParams{}, 2000);
  EXPECT_EQ(counts[1], 0);
  EXPECT_NEAR(counts[0] / 2000.0, 0.5, 0.05);
}

TEST(SamplerTest, SingleTokenVocabulary) {
  Sampler sampler(0);
  EXPECT_EQ(sampler.Sample(std::vector<float>{-7.0f}, SamplingParams{}, {}), 0);
  EXPECT_EQ(sampler.Sample(std::vector<float>{-7.0f}, Plain(0.0f), {}), 0);
}

TEST(ValidateSamplingParamsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}).ok());
  EXPECT_TRUE(ValidateSamplingParams(Plain(0.0f)).ok());
}

TEST(ValidateSamplingParamsTest, RejectsOutOfRangeFieldsByName) {
  struct Case {
    const char* field;
    void (*mutate)(SamplingParams&);
  };
  const Case cases[] = {
      {"temperature", [](SamplingParams& p) { p.temperature = -0.5f; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kNan; }},
      {"temperature", [](SamplingParams& p) { p.temperature = kInf; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -1; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.5f; }},
      {"top_p", [](SamplingParams& p) { p.top_p = kNan; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.1f; }},
      {"repeat_penalty", [](SamplingParams& p) { p.repeat_penalty = 0.0f; }},
      {"repeat_last_n", [](SamplingParams& p) { p.repeat_last_n = -2; }},
      {"max_new_tokens", [](SamplingParams& p) { p.max_new_tokens = -1; }},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const absl::Status status = ValidateSamplingParams(p);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.field));
  }
}

}  // namespace
}  // namespace engine
