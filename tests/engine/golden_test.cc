// End-to-end oracle tests of the FP32 decoder: greedy generation from BOS must reproduce the
// float64 reference's tokens exactly, and the logits of the first 16 positions must match it
// within kLogitTolerance. The goldens in ../shared come from an independent float64 forward pass.
#include <cmath>
#include <fstream>
#include <sstream>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "model/gguf_writer.h"
#include "model/model_loader.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace engine {
namespace {

// Max |our logit - float64 logit|. FP32 accumulation over a few hundred terms per dot product
// through a handful of layers gives errors ~1e-5 on logits of magnitude ~10; 1e-3 leaves room
// for summation-order differences between SIMD paths and still catches any real bug (a wrong
// RoPE pairing or norm epsilon moves logits by > 1e-2).
constexpr double kLogitTolerance = 1e-3;

struct Golden {
  std::vector<TokenId> greedy_tokens;       // BOS followed by 100 greedy tokens
  std::vector<std::vector<double>> logits;  // next-token logits after tokens[0..i], i < 16
};

Golden ReadGolden(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  Golden g;
  if (json.is_discarded()) return g;
  for (const auto& t : json["greedy_tokens"]) g.greedy_tokens.push_back(t.get<TokenId>());
  for (const auto& row : json["logits_first16_positions"]) {
    g.logits.push_back(row.get<std::vector<double>>());
  }
  return g;
}

struct GoldenCase {
  std::string name;
  std::string model;   // relative to shared/
  std::string golden;  // relative to shared/
};

class GoldenTest : public ::testing::TestWithParam<GoldenCase> {};

void ExpectGreedyMatches(const ModelOptions& options, const Golden& golden) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> model, Model::Load(options));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(*model));
  const TokenId bos[1] = {golden.greedy_tokens[0]};
  ASSERT_OK(session->Prefill(bos));
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::vector<TokenId> tokens = {bos[0]};
  while (tokens.size() < golden.greedy_tokens.size()) {
    ASSERT_OK_AND_ASSIGN(TokenId next, session->Step(greedy));
    tokens.push_back(next);
  }
  EXPECT_EQ(tokens, golden.greedy_tokens);
}

TEST_P(GoldenTest, GreedyTokensMatchFloat64Reference) {
  const Golden golden = ReadGolden(testing::SharedPath(GetParam().golden));
  ASSERT_EQ(golden.greedy_tokens.size(), 101u);
  ExpectGreedyMatches(ModelOptions{.path = testing::SharedPath(GetParam().model)}, golden);
}

TEST_P(GoldenTest, LogitsOfFirst16PositionsMatchFloat64Reference) {
  const Golden golden = ReadGolden(testing::SharedPath(GetParam().golden));
  ASSERT_EQ(golden.logits.size(), 16u);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Model> model,
                       Model::Load({.path = testing::SharedPath(GetParam().model)}));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(*model));
  const std::vector<TokenId> prefix(golden.greedy_tokens.begin(),
                                    golden.greedy_tokens.begin() + 16);
  std::vector<float> logits;
  ASSERT_OK(session->PrefillAllLogits(prefix, &logits));
  const size_t vocab = golden.logits[0].size();
  ASSERT_EQ(logits.size(), 16 * vocab);
  double max_error = 0.0;
  for (size_t i = 0; i < 16; ++i) {
    for (size_t v = 0; v < vocab; ++v) {
      max_error = std::max(max_error, std::abs(logits[i * vocab + v] - golden.logits[i][v]));
    }
  }
  EXPECT_LT(max_error, kLogitTolerance);
  RecordProperty("max_abs_logit_error", std::to_string(max_error));
  std::printf("max |logit error| vs float64 reference: %.3g\n", max_error);

  // Decode one token at a time must agree with the batched prefill too.
  ASSERT_OK(session->Rewind(0));
  for (size_t i = 0; i < 16; ++i) {
    const TokenId one[1] = {prefix[i]};
    ASSERT_OK(session->Prefill(one));
    const std::span<const float> step = session->Logits();
    double step_error = 0.0;
    for (size_t v = 0; v < vocab; ++v) {
      step_error = std::max(step_error, std::abs(step[v] - golden.logits[i][v]));
    }
    EXPECT_LT(step_error, kLogitTolerance) << "position " << i;
  }
}

// The same model written to GGUF by our writer (Q/K permuted to interleaved RoPE for the
// Hugging Face model) and read back generates the same tokens.
TEST_P(GoldenTest, GgufRoundTripGeneratesTheSameTokens) {
  const Golden golden = ReadGolden(testing::SharedPath(GetParam().golden));
  ASSERT_OK_AND_ASSIGN(model::LoadedModel loaded,
                       model::LoadModelFile(testing::SharedPath(GetParam().model)));
  const std::string gguf = testing::TempDir() + "/" + GetParam().name + ".gguf";
  ASSERT_OK(model::WriteGgufModel(loaded, gguf));
  ExpectGreedyMatches(ModelOptions{.path = gguf}, golden);
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, GoldenTest,
    ::testing::Values(GoldenCase{"stories260K", "models/stories260K/stories260K.bin",
                                 "models/stories260K/golden_greedy.json"},
                      GoldenCase{"tinystories656K", "models/tinystories-656K",
                                 "models/tinystories-656K/golden_greedy.json"}),
    [](const ::testing::TestParamInfo<GoldenCase>& info) { return info.param.name; });

}  // namespace
}  // namespace engine
