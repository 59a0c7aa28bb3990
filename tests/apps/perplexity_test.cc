// Tests of `fp4lm eval`'s math (apps/fp4lm/perplexity.h): NLL and KL on hand-derived rows, the
// window plans of both protocols, the accumulator, and an end-to-end run on stories260K checked
// against a token-by-token recomputation and against the model itself as its own reference.
#include "fp4lm/perplexity.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace fp4lm {
namespace {

using ::testing::HasSubstr;

TEST(NllTest, UniformLogitsGiveLogOfVocabularySize) {
  for (const float level : {0.0f, 3.5f, -20.0f}) {
    const std::vector<float> row(7, level);
    for (int target = 0; target < 7; ++target) {
      EXPECT_NEAR(NllOfNextToken(row, target), std::log(7.0), 1e-12) << level;
    }
    EXPECT_NEAR(LogSumExp(row), level + std::log(7.0), 1e-12);
  }
}

TEST(NllTest, PeakedDistribution) {
  // p = e^10 / (e^10 + 3) on token 2, 1 / (e^10 + 3) on the others.
  const std::vector<float> row = {0.0f, 0.0f, 10.0f, 0.0f};
  EXPECT_NEAR(NllOfNextToken(row, 2), std::log1p(3.0 * std::exp(-10.0)), 1e-12);
  EXPECT_NEAR(NllOfNextToken(row, 0), std::log(std::exp(10.0) + 3.0), 1e-12);
}

TEST(NllTest, HugeLogitsDoNotOverflow) {
  // exp(1000) overflows a double; the max-subtracted sum does not.
  const std::vector<float> row = {1000.0f, 0.0f};
  EXPECT_NEAR(NllOfNextToken(row, 0), 0.0, 1e-12);
  EXPECT_NEAR(NllOfNextToken(row, 1), 1000.0, 1e-9);
  const std::vector<float> low = {-1000.0f, -1000.0f};
  EXPECT_NEAR(NllOfNextToken(low, 1), std::log(2.0), 1e-12);
}

TEST(NllTest, NonFiniteRowGivesNaN) {
  const std::vector<float> row = {0.0f, std::nanf("")};
  EXPECT_TRUE(std::isnan(LogSumExp(row)));
  const std::vector<float> inf = {0.0f, INFINITY};
  EXPECT_TRUE(std::isnan(NllOfNextToken(inf, 0)));
  EXPECT_TRUE(std::isnan(LogSumExp(std::vector<float>{})));
}

TEST(KlTest, IdenticalRowsGiveExactlyZero) {
  std::vector<float> row(1000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = std::sin(0.37f * i) * 9.0f;
  EXPECT_EQ(KlDivergence(row, row), 0.0);
  const std::vector<float> with_inf = {1.0f, -INFINITY, 2.0f};
  EXPECT_EQ(KlDivergence(with_inf, with_inf), 0.0);
}

TEST(KlTest, TwoWayByHand) {
  // P_ref = (1/2, 1/2), P = (3/4, 1/4):
  // KL = 1/2 ln((1/2)/(3/4)) + 1/2 ln((1/2)/(1/4)) = 1/2 ln(4/3).
  const std::vector<float> ref = {0.0f, 0.0f};
  const std::vector<float> model = {std::log(3.0f), 0.0f};
  EXPECT_NEAR(KlDivergence(ref, model), 0.5 * std::log(4.0 / 3.0), 1e-7);
}

TEST(KlTest, ThreeWayByHandAndAsymmetric) {
  // P_ref = (1/2, 1/4, 1/4), P = uniform:
  //   KL(P_ref || P) = 1/2 ln(3/2) + 2 * 1/4 ln(3/4) = 1/2 ln(9/8)
  //   KL(P || P_ref) = 1/3 [ln(2/3) + 2 ln(4/3)]   = 1/3 ln(32/27)
  const std::vector<float> ref = {std::log(2.0f), 0.0f, 0.0f};
  const std::vector<float> uniform = {5.0f, 5.0f, 5.0f};  // a shift changes nothing
  EXPECT_NEAR(KlDivergence(ref, uniform), 0.5 * std::log(9.0 / 8.0), 1e-7);
  EXPECT_NEAR(KlDivergence(uniform, ref), std::log(32.0 / 27.0) / 3.0, 1e-7);
}

TEST(KlTest, ZeroProbabilityInTheReferenceAddsNothing) {
  // The reference gives token 1 probability 0; the model's -inf there must not make NaN.
  const std::vector<float> ref = {0.0f, -INFINITY};
  const std::vector<float> model = {0.0f, -INFINITY};
  EXPECT_EQ(KlDivergence(ref, model), 0.0);
  const std::vector<float> model2 = {0.0f, 0.0f};  // P = (1/2, 1/2): KL = ln 2
  EXPECT_NEAR(KlDivergence(ref, model2), std::log(2.0), 1e-12);
}

TEST(ArgMaxTest, FirstMaximumWins) {
  EXPECT_EQ(ArgMax(std::vector<float>{1.0f, 3.0f, 3.0f, -2.0f}), 1);
  EXPECT_EQ(ArgMax(std::vector<float>{-5.0f}), 0);
  EXPECT_EQ(ArgMax(std::vector<float>{}), -1);
}

TEST(ProtocolTest, ParsesBothNamesOnly) {
  ASSERT_OK_AND_ASSIGN(PplProtocol p, ParsePplProtocol("papers"));
  EXPECT_EQ(p, PplProtocol::kPapers);
  ASSERT_OK_AND_ASSIGN(p, ParsePplProtocol("llamacpp"));
  EXPECT_EQ(p, PplProtocol::kLlamaCpp);
  EXPECT_STREQ(PplProtocolName(PplProtocol::kLlamaCpp), "llamacpp");
  const absl::StatusOr<PplProtocol> bad = ParsePplProtocol("wikitext");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("'wikitext'"));
}

TEST(WindowPlanTest, PapersNonOverlappingLastPartialDropped) {
  ASSERT_OK_AND_ASSIGN(WindowPlan plan, MakeWindows(10, 4, PplProtocol::kPapers));
  ASSERT_EQ(plan.windows.size(), 2u);  // tokens 8 and 9 are a partial window: dropped
  EXPECT_EQ(plan.windows[0].begin, 0);
  EXPECT_EQ(plan.windows[1].begin, 4);
  for (const Window& w : plan.windows) {
    EXPECT_EQ(w.length, 4);
    EXPECT_EQ(w.first_scored, 1);  // tokens 1..3 scored, from logit rows 0..2
    EXPECT_EQ(w.scored(), 3);
  }
  EXPECT_EQ(plan.scored_tokens(), 6);
  ASSERT_OK_AND_ASSIGN(plan, MakeWindows(8, 4, PplProtocol::kPapers));
  EXPECT_EQ(plan.windows.size(), 2u);
  ASSERT_OK_AND_ASSIGN(plan, MakeWindows(4, 2, PplProtocol::kPapers));
  EXPECT_EQ(plan.scored_tokens(), 2);
}

TEST(WindowPlanTest, LlamaCppScoresTheSecondHalf) {
  // llama-perplexity with n_ctx 512: first = 256; 512 - 256 - 1 = 255 tokens scored per chunk,
  // targets 257..511 of the window; n_chunk = n_tokens / n_ctx.
  ASSERT_OK_AND_ASSIGN(WindowPlan plan, MakeWindows(2000, 512, PplProtocol::kLlamaCpp));
  ASSERT_EQ(plan.windows.size(), 3u);
  EXPECT_EQ(plan.windows[2].begin, 1024);
  EXPECT_EQ(plan.windows[0].first_scored, 257);
  EXPECT_EQ(plan.windows[0].scored(), 255);
  EXPECT_EQ(plan.scored_tokens(), 3 * 255);
  // Odd ctx 5: first = 2, targets 3 and 4.
  ASSERT_OK_AND_ASSIGN(plan, MakeWindows(5, 5, PplProtocol::kLlamaCpp));
  ASSERT_EQ(plan.windows.size(), 1u);
  EXPECT_EQ(plan.windows[0].first_scored, 3);
  EXPECT_EQ(plan.windows[0].scored(), 2);
  ASSERT_OK_AND_ASSIGN(plan, MakeWindows(3, 3, PplProtocol::kLlamaCpp));
  EXPECT_EQ(plan.scored_tokens(), 1);
}

TEST(WindowPlanTest, MaxWindowsKeepsTheFirstOnes) {
  ASSERT_OK_AND_ASSIGN(WindowPlan plan, MakeWindows(100, 10, PplProtocol::kPapers, 4));
  ASSERT_EQ(plan.windows.size(), 4u);
  EXPECT_EQ(plan.windows[3].begin, 30);
  ASSERT_OK_AND_ASSIGN(plan, MakeWindows(25, 10, PplProtocol::kLlamaCpp, 9));
  EXPECT_EQ(plan.windows.size(), 2u);  // more than there are: all of them
}

TEST(WindowPlanTest, Errors) {
  const absl::StatusOr<WindowPlan> short_text = MakeWindows(3, 4, PplProtocol::kPapers);
  ASSERT_FALSE(short_text.ok());
  EXPECT_EQ(short_text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(short_text.status().message()), HasSubstr("3 tokens"));
  EXPECT_FALSE(MakeWindows(100, 1, PplProtocol::kPapers).ok());
  EXPECT_FALSE(MakeWindows(100, 2, PplProtocol::kLlamaCpp).ok());
  EXPECT_FALSE(MakeWindows(100, 0, PplProtocol::kPapers).ok());
  EXPECT_FALSE(MakeWindows(100, 10, PplProtocol::kPapers, -1).ok());
}

TEST(AccumulatorTest, PerplexityOfUniformRowsIsTheVocabularySize) {
  EvalAccumulator acc;
  EXPECT_TRUE(std::isnan(acc.mean_nll()));
  const std::vector<float> row(5, 1.0f);
  for (int t = 0; t < 5; ++t) acc.Add(row, t);
  EXPECT_EQ(acc.count(), 5);
  EXPECT_NEAR(acc.ppl(), 5.0, 1e-12);
  EXPECT_NEAR(acc.ppl_stderr(), 0.0, 1e-12);  // every NLL is the same
  EXPECT_FALSE(acc.has_reference());
  EXPECT_TRUE(acc.all_finite());
}

TEST(AccumulatorTest, MeanOfNllAndReferenceStatistics) {
  EvalAccumulator acc;
  // Position 1: model (3/4, 1/4) vs reference uniform, target 0.
  //   NLL = ln(4/3), ref NLL = ln 2, KL = 1/2 ln(1/2 / 3/4) + 1/2 ln(1/2 / 1/4) = 1/2 ln(4/3);
  //   argmax 0 vs 0 (first of a tie): same.
  // Position 2: model uniform vs reference (1/4, 3/4), target 1.
  //   NLL = ln 2, ref NLL = ln(4/3), KL = 1/4 ln(1/2) + 3/4 ln(3/2); argmax 0 vs 1: differ.
  const std::vector<float> peaked0 = {std::log(3.0f), 0.0f};
  const std::vector<float> uniform = {0.0f, 0.0f};
  const std::vector<float> peaked1 = {0.0f, std::log(3.0f)};
  acc.Add(peaked0, uniform, 0);
  acc.Add(uniform, peaked1, 1);
  const double nll = (std::log(4.0 / 3.0) + std::log(2.0)) / 2;
  const double ref_nll = (std::log(2.0) + std::log(4.0 / 3.0)) / 2;
  const double kl = (0.5 * std::log(4.0 / 3.0) + 0.75 * std::log(1.5) + 0.25 * std::log(0.5)) / 2;
  EXPECT_TRUE(acc.has_reference());
  EXPECT_NEAR(acc.mean_nll(), nll, 1e-7);
  EXPECT_NEAR(acc.ppl(), std::exp(nll), 1e-6);
  EXPECT_NEAR(acc.ref_mean_nll(), ref_nll, 1e-7);
  EXPECT_NEAR(acc.ref_ppl(), std::sqrt(8.0 / 3.0), 1e-6);
  EXPECT_NEAR(acc.kld_mean(), kl, 1e-7);
  EXPECT_DOUBLE_EQ(acc.top1_agreement_percent(), 50.0);
}

TEST(AccumulatorTest, NonFiniteIsReported) {
  EvalAccumulator acc;
  acc.Add(std::vector<float>{0.0f, std::nanf("")}, 0);
  EXPECT_FALSE(acc.all_finite());
}

// A text from stories260K's domain (TinyStories), long enough for several windows.
std::string StoryText() {
  const std::string story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park with her dog, Max. One day, Lily saw a big red ball under a tree. She ran to the "
      "ball and kicked it very high. Max barked and ran after it. Lily laughed and said, \"Good "
      "dog, Max!\" Then her mom called her home for lunch. Lily was happy.\n";
  std::string text;
  for (int i = 0; i < 12; ++i) text += story;
  return text;
}

class StoriesEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string path = engine::testing::SharedPath("models/stories260K/stories260K.bin");
    ASSERT_OK_AND_ASSIGN(model_, engine::Model::Load({.path = path, .num_threads = 1}));
    ASSERT_OK_AND_ASSIGN(ref_, engine::Model::Load({.path = path, .num_threads = 1}));
  }
  std::unique_ptr<engine::Model> model_;
  std::unique_ptr<engine::Model> ref_;
};

TEST_F(StoriesEvalTest, PapersPerplexityIsSaneAndSelfKlIsZero) {
  const std::string text = StoryText();
  ASSERT_OK_AND_ASSIGN(const std::vector<engine::TokenId> tokens,
                       model_->Tokenize(text, /*add_bos=*/false));
  std::vector<EvalProgress> reports;
  ASSERT_OK_AND_ASSIGN(
      const EvalResult r,
      EvaluatePerplexity(*model_, ref_.get(), text, EvalConfig{.ctx = 128},
                         [&](const EvalProgress& p) { reports.push_back(p); }));
  EXPECT_EQ(r.protocol, PplProtocol::kPapers);
  EXPECT_EQ(r.ctx, 128);
  EXPECT_EQ(r.n_tokens, static_cast<int64_t>(tokens.size()));
  EXPECT_EQ(r.windows, static_cast<int32_t>(tokens.size() / 128));
  EXPECT_GE(r.windows, 3);
  EXPECT_EQ(r.scored_tokens, r.windows * 127);
  EXPECT_FALSE(r.bos_per_window);
  EXPECT_TRUE(std::isfinite(r.ppl));
  EXPECT_GT(r.ppl, 1.0);
  EXPECT_LT(r.ppl, model_->info().vocab_size);
  EXPECT_NEAR(r.ppl, std::exp(r.nll), 1e-9 * r.ppl);
  ASSERT_TRUE(r.has_reference);
  EXPECT_EQ(r.kld_mean, 0.0);
  EXPECT_EQ(r.top1_agreement, 100.0);
  EXPECT_EQ(r.ref_ppl, r.ppl);
  // One report before the first window, then one per window, the last with the final PPL.
  ASSERT_EQ(reports.size(), static_cast<size_t>(r.windows) + 1);
  EXPECT_EQ(reports.front().windows_done, 0);
  EXPECT_EQ(reports.front().windows_total, r.windows);
  EXPECT_EQ(reports.back().windows_done, r.windows);
  EXPECT_DOUBLE_EQ(reports.back().running_ppl, r.ppl);
}

TEST_F(StoriesEvalTest, MatchesTokenByTokenRecomputation) {
  // One papers window of 64 tokens, scored independently: feed the tokens one at a time to a
  // fresh session and score token i + 1 with the logits after token i.
  const std::string text = StoryText();
  ASSERT_OK_AND_ASSIGN(const EvalResult r,
                       EvaluatePerplexity(*model_, nullptr, text,
                                          EvalConfig{.ctx = 64, .max_windows = 1}));
  EXPECT_EQ(r.windows, 1);
  EXPECT_FALSE(r.has_reference);
  ASSERT_OK_AND_ASSIGN(const std::vector<engine::TokenId> tokens,
                       model_->Tokenize(text, /*add_bos=*/false));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<engine::Session> session, engine::Session::Create(*model_));
  double nll = 0.0;
  for (int i = 0; i + 1 < 64; ++i) {
    ASSERT_OK(session->Prefill(std::span<const engine::TokenId>(&tokens[i], 1)));
    nll += NllOfNextToken(session->Logits(), tokens[i + 1]);
  }
  EXPECT_NEAR(r.nll, nll / 63, 1e-4);
}

TEST_F(StoriesEvalTest, LlamaCppProtocolPutsBosFirst) {
  const std::string text = StoryText();
  ASSERT_OK_AND_ASSIGN(const std::vector<engine::TokenId> tokens,
                       model_->Tokenize(text, /*add_bos=*/false));
  ASSERT_OK_AND_ASSIGN(const EvalResult r,
                       EvaluatePerplexity(*model_, ref_.get(), text,
                                          EvalConfig{.ctx = 100,
                                                     .protocol = PplProtocol::kLlamaCpp,
                                                     .max_windows = 2}));
  ASSERT_GE(model_->info().bos_id, 0);  // llama2.c vocabularies add BOS
  EXPECT_TRUE(r.bos_per_window);
  EXPECT_EQ(r.n_tokens, static_cast<int64_t>(tokens.size()) + 1);
  EXPECT_EQ(r.windows, 2);
  EXPECT_EQ(r.scored_tokens, 2 * (100 - 50 - 1));
  EXPECT_TRUE(std::isfinite(r.ppl));
  EXPECT_GT(r.ppl, 1.0);
  EXPECT_LT(r.ppl, model_->info().vocab_size);
  EXPECT_EQ(r.kld_mean, 0.0);
  EXPECT_EQ(r.top1_agreement, 100.0);
}

TEST_F(StoriesEvalTest, DefaultCtxIsCappedByTheModelsContext) {
  const std::string text = StoryText() + StoryText();
  ASSERT_OK_AND_ASSIGN(const EvalResult r,
                       EvaluatePerplexity(*model_, nullptr, text, EvalConfig{.max_windows = 1}));
  EXPECT_EQ(r.ctx, model_->info().max_seq_len);  // 512 < 2048
}

TEST_F(StoriesEvalTest, ClearErrors) {
  const absl::StatusOr<EvalResult> short_text =
      EvaluatePerplexity(*model_, nullptr, "Once upon a time", EvalConfig{.ctx = 64});
  ASSERT_FALSE(short_text.ok());
  EXPECT_THAT(std::string(short_text.status().message()), HasSubstr("fewer than one window"));

  const absl::StatusOr<EvalResult> too_long =
      EvaluatePerplexity(*model_, nullptr, StoryText(), EvalConfig{.ctx = 4096});
  ASSERT_FALSE(too_long.ok());
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("context window"));

  ASSERT_OK_AND_ASSIGN(
      std::unique_ptr<engine::Model> other,
      engine::Model::Load(
          {.path = engine::testing::SharedPath("models/tinystories-656K"), .num_threads = 1}));
  const absl::StatusOr<EvalResult> mismatch =
      EvaluatePerplexity(*model_, other.get(), StoryText(), EvalConfig{.ctx = 64});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mismatch.status().message()), HasSubstr("vocabulary"));
}

}  // namespace
}  // namespace fp4lm
