// Folding per-channel factors into the neighbouring layers leaves the full-precision model's
// function unchanged: with power-of-two factors (LLM-FP4) every product is bit-identical, so
// the logits are equal exactly; with arbitrary factors (MergeQuant) equal to float rounding.
#include "quantizer/scale_folding.h"

#include <cmath>
#include <random>

#include "engine/kv_cache.h"
#include "engine/transformer.h"
#include "gtest/gtest.h"
#include "model/model_loader.h"
#include "tests/test_util.h"

namespace engine::quantizer {
namespace {

using model::F32Tensor;

std::vector<float> Logits(const model::LoadedModel& m, const std::vector<int32_t>& tokens) {
  absl::StatusOr<KvCache> kv = KvCache::Create({.n_layers = m.config.n_layers,
                                                .n_kv_heads = m.config.n_kv_heads,
                                                .head_dim = m.config.head_dim,
                                                .capacity = 64});
  EXPECT_TRUE(kv.ok());
  kernels::ThreadPool pool(2);
  ForwardBuffers buffers;
  std::vector<float> logits(tokens.size() * m.config.vocab_size);
  Forward({.config = &m.config, .weights = &m.weights, .tokens = tokens, .all_logits = true,
           .logits = logits.data()},
          *kv, pool, buffers);
  return logits;
}

std::vector<float> Copy(const F32Tensor& t) {
  return std::vector<float>(t.data, t.data + t.num_elements());
}

// Random factors: powers of two in [1, 8] or arbitrary in [0.25, 4].
std::vector<float> RandomFactors(int64_t n, bool power_of_two, std::mt19937& rng) {
  std::uniform_int_distribution<int> shift(0, 3);
  std::uniform_real_distribution<float> log_factor(-2.0f, 2.0f);
  std::vector<float> s(static_cast<size_t>(n));
  for (float& v : s) v = power_of_two ? std::ldexp(1.0f, shift(rng)) : std::exp2(log_factor(rng));
  return s;
}

// Folds random factors into every layer of `m` the way the quantizer does.
void FoldRandomFactors(model::LoadedModel& m, bool power_of_two, uint32_t seed) {
  std::mt19937 rng(seed);
  const model::ModelConfig& c = m.config;
  const int64_t d = c.model_dim, f = c.ffn_dim, qd = c.q_dim(), kvd = c.kv_dim();
  model::ModelWeights& w = m.weights;
  for (model::LayerWeights& l : w.layers) {
    // q/k/v input: RMSNorm gamma / s, q/k/v columns * s.
    std::vector<float> s = RandomFactors(d, power_of_two, rng);
    std::vector<float> gamma = Copy(l.attn_norm), wq = Copy(l.wq), wk = Copy(l.wk), wv = Copy(l.wv);
    DivideVector(gamma.data(), s);
    MultiplyColumns(wq.data(), qd, d, s);
    MultiplyColumns(wk.data(), kvd, d, s);
    MultiplyColumns(wv.data(), kvd, d, s);
    // o input: factors per (kv head, d), v rows / s, o columns * s expanded to the q heads.
    const std::vector<float> s_kv = ShareAcrossGroups(RandomFactors(qd, power_of_two, rng),
                                                      c.n_heads, c.n_kv_heads, c.head_dim);
    const std::vector<float> s_o = ExpandToQueryHeads(s_kv, c.n_heads, c.n_kv_heads, c.head_dim);
    std::vector<float> wo = Copy(l.wo);
    DivideRows(wv.data(), kvd, d, s_kv);
    MultiplyColumns(wo.data(), d, qd, s_o);
    // gate/up input, and down input folded into up's rows.
    s = RandomFactors(d, power_of_two, rng);
    std::vector<float> gamma2 = Copy(l.ffn_norm), wg = Copy(l.w_gate), wu = Copy(l.w_up),
                       wd = Copy(l.w_down);
    DivideVector(gamma2.data(), s);
    MultiplyColumns(wg.data(), f, d, s);
    MultiplyColumns(wu.data(), f, d, s);
    const std::vector<float> s_d = RandomFactors(f, power_of_two, rng);
    DivideRows(wu.data(), f, d, s_d);
    MultiplyColumns(wd.data(), d, f, s_d);
    l.attn_norm = w.Own(gamma, {d});
    l.wq = w.Own(wq, {qd, d});
    l.wk = w.Own(wk, {kvd, d});
    l.wv = w.Own(wv, {kvd, d});
    l.wo = w.Own(wo, {d, qd});
    l.ffn_norm = w.Own(gamma2, {d});
    l.w_gate = w.Own(wg, {f, d});
    l.w_up = w.Own(wu, {f, d});
    l.w_down = w.Own(wd, {d, f});
  }
}

class ScaleFoldingTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ScaleFoldingTest, PowerOfTwoFoldingIsExact) {
  ASSERT_OK_AND_ASSIGN(model::LoadedModel m, model::LoadModelFile(testing::SharedPath(GetParam())));
  const std::vector<int32_t> tokens = {1, 200, 45, 301, 17, 99, 5, 250, 13, 7};
  const std::vector<float> before = Logits(m, tokens);
  FoldRandomFactors(m, /*power_of_two=*/true, /*seed=*/3);
  EXPECT_EQ(Logits(m, tokens), before);
}

TEST_P(ScaleFoldingTest, ArbitraryFoldingIsExactToFloatRounding) {
  ASSERT_OK_AND_ASSIGN(model::LoadedModel m, model::LoadModelFile(testing::SharedPath(GetParam())));
  const std::vector<int32_t> tokens = {1, 200, 45, 301, 17, 99, 5, 250, 13, 7};
  const std::vector<float> before = Logits(m, tokens);
  FoldRandomFactors(m, /*power_of_two=*/false, /*seed=*/4);
  const std::vector<float> after = Logits(m, tokens);
  double max_error = 0.0;
  for (size_t i = 0; i < before.size(); ++i) {
    max_error = std::max(max_error, double{std::abs(after[i] - before[i])});
  }
  // A few float roundings per weight and activation, through a handful of layers.
  EXPECT_LT(max_error, 1e-3);
  EXPECT_GT(max_error, 0.0);  // arbitrary factors do round; the test would be vacuous otherwise
}

INSTANTIATE_TEST_SUITE_P(TinyModels, ScaleFoldingTest,
                         ::testing::Values("models/stories260K/stories260K.bin",
                                           "models/tinystories-656K"));

TEST(ScaleFoldingTest, PowerOfTwoFactorsShiftOnlyChannelsAboveTheMedian) {
  ChannelStats stats;
  stats.absmax = {1.0f, 1.0f, 1.0f, 2.0f, 3.1f, 100.0f, 0.01f};
  const std::vector<float> s = PowerOfTwoFactors(stats, 3);
  // median 1 -> log2 ratios 0, 0, 0, 1, 1.63, 6.6 (clamped to 3), negative (clamped to 0).
  EXPECT_EQ(s, (std::vector<float>{1, 1, 1, 2, 4, 8, 1}));
}

TEST(ScaleFoldingTest, GroupedHeadsShareTheirKvFactor) {
  // 4 query heads, 2 kv heads, head_dim 2: heads 0,1 share kv head 0; heads 2,3 kv head 1.
  const std::vector<float> per_q = {1, 8, 2, 1, 4, 1, 1, 16};
  const std::vector<float> kv = ShareAcrossGroups(per_q, 4, 2, 2);
  EXPECT_EQ(kv, (std::vector<float>{2, 8, 4, 16}));
  EXPECT_EQ(ExpandToQueryHeads(kv, 4, 2, 2), (std::vector<float>{2, 8, 2, 8, 4, 16, 4, 16}));
}

}  // namespace
}  // namespace engine::quantizer
