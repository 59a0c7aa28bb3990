// The public API under misuse (issue 7): calls in the wrong order, invalid token ids and
// options, a full KV cache, one Session used from two threads, and a Session that outlives its
// Model. Each must give a clear absl::Status (or, for the Session outliving its Model, simply
// work), never a crash or a silently wrong state. Uses stories260K (llama2.c, vocab 512).
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace engine {
namespace {

using ::testing::HasSubstr;

constexpr SamplingParams kGreedy{.temperature = 0.0f, .max_new_tokens = 12};

std::unique_ptr<Model> LoadStories() {
  absl::StatusOr<std::unique_ptr<Model>> m =
      Model::Load({.path = testing::SharedPath("models/stories260K/stories260K.bin"),
                   .num_threads = 2});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : nullptr;
}

void ExpectCode(const absl::Status& s, absl::StatusCode code, const std::string& words) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(words)) << s;
}

class SessionMisuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = LoadStories();
    ASSERT_NE(model_, nullptr);
    ASSERT_OK_AND_ASSIGN(session_, Session::Create(*model_, {.max_seq_len = 16}));
    bos_ = model_->info().bos_id;
    ASSERT_GE(bos_, 0);
  }
  std::unique_ptr<Model> model_;
  std::unique_ptr<Session> session_;
  TokenId bos_ = -1;
};

TEST_F(SessionMisuseTest, SamplingBeforePrefillOrAfterRewindIsAFailedPrecondition) {
  EXPECT_TRUE(session_->Logits().empty());
  ExpectCode(session_->Sample(kGreedy).status(), absl::StatusCode::kFailedPrecondition,
             "before Prefill");
  ExpectCode(session_->Step(kGreedy).status(), absl::StatusCode::kFailedPrecondition,
             "before Prefill");
  const TokenId prompt[] = {bos_, 403, 407};
  ASSERT_OK(session_->Prefill(prompt));
  EXPECT_EQ(session_->Logits().size(), static_cast<size_t>(model_->info().vocab_size));
  ASSERT_OK(session_->Rewind(2));
  EXPECT_TRUE(session_->Logits().empty());  // the logits belonged to the dropped position
  ExpectCode(session_->Step(kGreedy).status(), absl::StatusCode::kFailedPrecondition, "Rewind");
  // Feeding again makes it usable; nothing was corrupted.
  const TokenId again[] = {407};
  ASSERT_OK(session_->Prefill(again));
  EXPECT_OK(session_->Step(kGreedy).status());
  EXPECT_EQ(session_->position(), 4);
}

TEST_F(SessionMisuseTest, RewindOutsideTheCacheIsAFailedPrecondition) {
  const TokenId prompt[] = {bos_, 403};
  ASSERT_OK(session_->Prefill(prompt));
  ExpectCode(session_->Rewind(3), absl::StatusCode::kFailedPrecondition, "holds 2 tokens");
  ExpectCode(session_->Rewind(-1), absl::StatusCode::kFailedPrecondition, "position -1");
  EXPECT_EQ(session_->position(), 2);
  session_->Reset();
  EXPECT_EQ(session_->position(), 0);
}

TEST_F(SessionMisuseTest, InvalidTokenIdsAreInvalidArgumentAndChangeNothing) {
  const int32_t vocab = model_->info().vocab_size;
  for (const TokenId bad : {-1, vocab, vocab + 1, std::numeric_limits<TokenId>::min()}) {
    const TokenId tokens[] = {bos_, bad};
    ExpectCode(session_->Prefill(tokens), absl::StatusCode::kInvalidArgument,
               "outside the vocabulary");
    std::vector<float> all;
    ExpectCode(session_->PrefillAllLogits(tokens, &all), absl::StatusCode::kInvalidArgument,
               "outside the vocabulary");
    ExpectCode(session_->GenerateFromTokens(tokens, kGreedy, [](TokenId, std::string_view) {
      return true;
    }),
               absl::StatusCode::kInvalidArgument, "outside the vocabulary");
    EXPECT_EQ(model_->Detokenize(tokens).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(model_->IsEndOfGeneration(bad));
  }
  EXPECT_EQ(session_->position(), 0);
  ExpectCode(session_->Prefill({}), absl::StatusCode::kInvalidArgument, "no tokens");
  ExpectCode(session_->GenerateFromTokens({}, kGreedy, [](TokenId, std::string_view) {
    return true;
  }),
             absl::StatusCode::kInvalidArgument, "no tokens");
  EXPECT_EQ(session_->PrefillAllLogits(std::vector<TokenId>{bos_}, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionMisuseTest, InvalidOptionsAreErrors) {
  EXPECT_EQ(Session::Create(*model_, {.max_seq_len = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // 2^31-1 positions of stories260K's cache need terabytes: refused before allocating.
  ExpectCode(Session::Create(*model_, {.max_seq_len = std::numeric_limits<int32_t>::max()})
                 .status(),
             absl::StatusCode::kResourceExhausted, "MiB");
  const TokenId prompt[] = {bos_};
  ASSERT_OK(session_->Prefill(prompt));
  SamplingParams bad = kGreedy;
  bad.temperature = -1.0f;
  EXPECT_EQ(session_->Sample(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Model::Load({.path = ""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Model::Load({.path = testing::SharedPath("models/stories260K/stories260K.bin"),
                         .num_threads = -2})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionMisuseTest, AFullContextIsResourceExhaustedWithoutAStateChange) {
  std::vector<TokenId> tokens(17, 403);
  tokens[0] = bos_;
  ExpectCode(session_->Prefill(tokens), absl::StatusCode::kResourceExhausted, "capacity of 16");
  EXPECT_EQ(session_->position(), 0);
  tokens.resize(16);
  ASSERT_OK(session_->Prefill(tokens));
  EXPECT_EQ(session_->position(), 16);
  // Sampling still works (it feeds nothing); feeding the sample does not fit.
  EXPECT_OK(session_->Sample(kGreedy).status());
  ExpectCode(session_->Step(kGreedy).status(), absl::StatusCode::kResourceExhausted,
             "context full");
  EXPECT_EQ(session_->position(), 16);
  EXPECT_EQ(session_->Logits().size(), static_cast<size_t>(model_->info().vocab_size));
}

TEST_F(SessionMisuseTest, GenerationThatFillsTheContextEndsWithResourceExhausted) {
  // From BOS alone in a 16-token cache: 16 tokens can be generated (the last is sampled, not
  // fed), and the 17th does not fit. stories260K's greedy story has no EOS that early.
  std::vector<TokenId> generated;
  int callbacks = 0;
  const TokenId prompt[] = {bos_};
  SamplingParams params = kGreedy;
  params.max_new_tokens = 100;
  const absl::Status s = session_->GenerateFromTokens(
      prompt, params,
      [&](TokenId token, std::string_view) {
        if (token >= 0) ++callbacks;
        return true;
      },
      &generated);
  ExpectCode(s, absl::StatusCode::kResourceExhausted, "context full");
  EXPECT_EQ(generated.size(), 16u);
  EXPECT_EQ(callbacks, 16);
  EXPECT_EQ(session_->position(), 16);
}

TEST(SessionLifetimeTest, ASessionOutlivesItsModel) {
  std::unique_ptr<Model> model = LoadStories();
  ASSERT_NE(model, nullptr);
  const TokenId prompt[] = {model->info().bos_id, 403, 407};
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> reference, Session::Create(*model));
  std::vector<TokenId> want;
  ASSERT_OK(reference->GenerateFromTokens(prompt, kGreedy,
                                          [](TokenId, std::string_view) { return true; }, &want));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> orphan, Session::Create(*model));
  model.reset();  // the Model object is gone; its weights and tokenizer live on in the Session
  std::vector<TokenId> got;
  std::string text;
  ASSERT_OK(orphan->GenerateFromTokens(
      prompt, kGreedy,
      [&text](TokenId, std::string_view piece) {
        text += piece;
        return true;
      },
      &got));
  EXPECT_EQ(got, want);
  EXPECT_FALSE(text.empty());
  ASSERT_OK(orphan->Rewind(0));
  ASSERT_OK(orphan->Generate("Once upon a time", kGreedy,
                             [](TokenId, std::string_view) { return true; }));
}

TEST(SessionConcurrencyTest, ASecondThreadGetsFailedPreconditionWhileACallRuns) {
  std::unique_ptr<Model> model = LoadStories();
  ASSERT_NE(model, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(*model));
  const TokenId prompt[] = {model->info().bos_id};
  std::promise<void> inside, tried;
  std::shared_future<void> tried_future = tried.get_future().share();
  bool first_callback = true;
  // Thread A generates; its first callback parks it inside Generate until B has tried.
  std::thread a([&] {
    const absl::Status s = session->GenerateFromTokens(
        prompt, kGreedy, [&](TokenId, std::string_view) {
          if (first_callback) {
            first_callback = false;
            inside.set_value();
            tried_future.wait();
          }
          return true;
        });
    EXPECT_OK(s);
  });
  inside.get_future().wait();
  const TokenId more[] = {403};
  ExpectCode(session->Prefill(more), absl::StatusCode::kFailedPrecondition, "another thread");
  ExpectCode(session->Step(kGreedy).status(), absl::StatusCode::kFailedPrecondition,
             "not thread-safe");
  ExpectCode(session->Rewind(0), absl::StatusCode::kFailedPrecondition, "another thread");
  ExpectCode(session->Generate("x", kGreedy, [](TokenId, std::string_view) { return true; }),
             absl::StatusCode::kFailedPrecondition, "another thread");
  tried.set_value();
  a.join();
  // Once A is done, this thread may use the Session.
  EXPECT_EQ(session->position(), 1 + kGreedy.max_new_tokens - 1);
  EXPECT_OK(session->Rewind(0));
  EXPECT_OK(session->Prefill(prompt));
}

TEST(SessionConcurrencyTest, TheCallbackMayUseItsOwnSession) {
  std::unique_ptr<Model> model = LoadStories();
  ASSERT_NE(model, nullptr);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Session> session, Session::Create(*model));
  const TokenId prompt[] = {model->info().bos_id};
  std::vector<int32_t> positions;
  ASSERT_OK(session->GenerateFromTokens(prompt, kGreedy, [&](TokenId, std::string_view) {
    positions.push_back(session->position());
    return true;
  }));
  ASSERT_EQ(positions.size(), static_cast<size_t>(kGreedy.max_new_tokens));
  EXPECT_EQ(positions.front(), 1);
  EXPECT_EQ(positions.back(), kGreedy.max_new_tokens);
}

}  // namespace
}  // namespace engine
