// Tests of the zero-shot harness (apps/fp4lm/harness.h): the metric arithmetic on hand-written
// log-likelihoods; lm-eval's request encoding and truncation; branched scoring (shared KV
// prefix + Rewind) against plain full-sequence forward passes; and the hand-made task files of
// tests/testdata/harness run on stories260K, whose expected acc / acc_norm / WinoGrande /
// LAMBADA outcomes are derived here from log-likelihoods computed independently (a fresh
// Session and PrefillAllLogits per request, log-softmax written out in this file).
#include "fp4lm/harness.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantizer/quantize_model.h"
#include "tests/test_util.h"

namespace fp4lm {
namespace {

using engine::TokenId;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Branched and full-sequence scoring feed the same tokens in different batches, which kernels
// are free to sum in a different order. The bound is for summed log-likelihoods (nats) of
// continuations of up to ~40 tokens; measured on the AVX-512 CPU path the results are
// bitwise equal (max_abs_ll_difference 0 on stories260K and SmolLM2).
constexpr double kLlTolerance = 1e-4;

// --- Arithmetic on hand-written numbers ------------------------------------------------

TEST(DecideTest, AccAndAccNormByHand) {
  ItemResult r;
  r.choices = {{.logprob = -4.0}, {.logprob = -6.0}};
  const std::vector<std::string> texts = {"ab", "abcdef"};
  Decide(r, texts);
  EXPECT_EQ(r.pred, 0);       // -4 > -6
  EXPECT_EQ(r.pred_norm, 1);  // -4/2 = -2 < -6/6 = -1
}

TEST(DecideTest, AccNormCountsCharactersNotBytes) {
  // "café" is 4 characters (5 bytes), "cafe!" 5: -8/4 = -2 < -9.5/5 = -1.9, so choice 1 wins;
  // with bytes it would be -8/5 = -1.6 > -1.9 and choice 0.
  ItemResult r;
  r.choices = {{.logprob = -8.0}, {.logprob = -9.5}};
  Decide(r, std::vector<std::string>{"caf\xC3\xA9", "cafe!"});
  EXPECT_EQ(r.pred, 0);
  EXPECT_EQ(r.pred_norm, 1);
}

TEST(DecideTest, TiesGoToTheFirstChoiceLikeNumpy) {
  ItemResult r;
  r.choices = {{.logprob = -3.0}, {.logprob = -1.0}, {.logprob = -1.0}};
  Decide(r, std::vector<std::string>{"a", "b", "c"});
  EXPECT_EQ(r.pred, 1);
  EXPECT_EQ(r.pred_norm, 1);
}

TEST(MetricsTest, StandardErrorIsLmEvalsMeanStderr) {
  // {1, 0, 1, 1}: mean 3/4; sample variance (3 * 1/16 + 9/16) / 3 = 1/4; stderr 1/2 / sqrt(4).
  const std::vector<double> v = {1, 0, 1, 1};
  const MeanStderr m = MeanWithStderr(v);
  EXPECT_DOUBLE_EQ(m.mean, 0.75);
  EXPECT_DOUBLE_EQ(m.stderr_, 0.25);
  EXPECT_TRUE(std::isnan(MeanWithStderr(std::vector<double>{1.0}).stderr_));
}

TEST(MetricsTest, MultipleChoiceAccuracies) {
  const TaskSpec& spec = *FindTask("piqa");
  Task task{.spec = &spec};
  task.items.resize(3);
  task.items[0].gold = 0;
  task.items[1].gold = 1;
  task.items[2].gold = 1;
  std::vector<ItemResult> results(3);
  results[0].pred = 0, results[0].pred_norm = 1;  // acc 1, acc_norm 0
  results[1].pred = 1, results[1].pred_norm = 1;  // acc 1, acc_norm 1
  results[2].pred = 0, results[2].pred_norm = 1;  // acc 0, acc_norm 1
  const TaskMetrics m = ComputeMetrics(task, results);
  EXPECT_EQ(m.n, 3);
  EXPECT_DOUBLE_EQ(m.acc.mean, 2.0 / 3);
  EXPECT_DOUBLE_EQ(m.acc_norm.mean, 2.0 / 3);
  EXPECT_TRUE(m.has_acc_norm);
  EXPECT_FALSE(m.has_ppl);
  // Sample sd of {1, 1, 0} = sqrt(1/3); stderr sqrt(1/3) / sqrt(3) = 1/3.
  EXPECT_NEAR(m.acc.stderr_, 1.0 / 3, 1e-15);
  EXPECT_FALSE(
      ComputeMetrics(Task{.spec = FindTask("boolq"), .items = task.items}, results).has_acc_norm);
}

TEST(MetricsTest, LambadaAccuracyAndPerplexity) {
  Task task{.spec = FindTask("lambada_openai")};
  task.items.resize(2);
  std::vector<ItemResult> results(2);
  results[0].choices = {{.logprob = -1.0, .greedy = true}};
  results[1].choices = {{.logprob = -3.0, .greedy = false}};
  const TaskMetrics m = ComputeMetrics(task, results);
  EXPECT_DOUBLE_EQ(m.acc.mean, 0.5);
  ASSERT_TRUE(m.has_ppl);
  // exp(-mean(-1, -3)) = e^2; sem of {-1, -3} = sqrt(2) / sqrt(2) = 1; delta method: e^2 * 1.
  EXPECT_NEAR(m.ppl, std::exp(2.0), 1e-12);
  EXPECT_NEAR(m.ppl_stderr, std::exp(2.0), 1e-12);
}

TEST(ScoreRowsTest, LogSoftmaxSumAndGreedyByHand) {
  // Row 0 uniform over 3 (log 1/3, argmax 0); row 1 = {0, ln 2, 0}: p(1) = 1/2, argmax 1.
  const std::vector<float> rows = {0, 0, 0, 0, std::log(2.0f), 0};
  const std::vector<TokenId> greedy = {0, 1};
  LoglikelihoodResult r = ScoreRows(rows, 3, greedy);
  EXPECT_NEAR(r.logprob, std::log(1.0 / 3) + std::log(0.5), 1e-6);
  EXPECT_TRUE(r.greedy);
  EXPECT_EQ(r.tokens, 2);
  const std::vector<TokenId> not_greedy = {0, 2};
  r = ScoreRows(rows, 3, not_greedy);
  EXPECT_NEAR(r.logprob, std::log(1.0 / 3) + std::log(0.25), 1e-6);
  EXPECT_FALSE(r.greedy);
}

TEST(RequestInputTest, LeftTruncationAsLmEval) {
  EncodedRequest r;
  for (int i = 1; i <= 10; ++i) r.context.push_back(i);
  r.continuation = {11, 12};
  // (ctx + cont)[-(5 + 1):][:-1] = [7 .. 11]; the continuation is predicted by rows 3 and 4.
  absl::StatusOr<RequestInput> in = MakeRequestInput(r, 5);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_THAT(in->input, ElementsAre(7, 8, 9, 10, 11));
  EXPECT_EQ(in->first_row, 3);
  EXPECT_TRUE(in->truncated);
  in = MakeRequestInput(r, 100);
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(in->input.size(), 11u);
  EXPECT_EQ(in->first_row, 9);
  EXPECT_FALSE(in->truncated);
  EXPECT_FALSE(MakeRequestInput(r, 1).ok());  // the continuation alone exceeds the window
  EXPECT_FALSE(MakeRequestInput(EncodedRequest{.context = {1}}, 8).ok());
}

TEST(AveragesTest, ThePapersTaskSets) {
  ASSERT_EQ(PaperAverages().size(), 2u);
  const AverageSpec& llm_fp4 = PaperAverages()[0];
  EXPECT_THAT(std::vector<std::string_view>(llm_fp4.tasks.begin(), llm_fp4.tasks.end()),
              ElementsAre("boolq", "piqa", "hellaswag", "winogrande", "arc_easy", "arc_challenge"));
  EXPECT_FALSE(llm_fp4.prefer_acc_norm);
  const AverageSpec& quarot = PaperAverages()[1];
  EXPECT_THAT(std::vector<std::string_view>(quarot.tasks.begin(), quarot.tasks.end()),
              ElementsAre("piqa", "hellaswag", "arc_easy", "arc_challenge", "winogrande",
                          "lambada_openai"));
  TaskMetrics m{.acc = {0.5, 0}, .acc_norm = {0.6, 0}, .has_acc_norm = true};
  EXPECT_DOUBLE_EQ(AverageMetric(llm_fp4, m), 0.5);
  EXPECT_DOUBLE_EQ(AverageMetric(quarot, m), 0.6);
  m.has_acc_norm = false;
  EXPECT_DOUBLE_EQ(AverageMetric(quarot, m), 0.5);
}

TEST(BosPolicyTest, Names) {
  EXPECT_EQ(*ParseBosPolicy("auto"), BosPolicy::kTokenizer);
  EXPECT_EQ(*ParseBosPolicy("always"), BosPolicy::kAlways);
  EXPECT_EQ(*ParseBosPolicy("never"), BosPolicy::kNever);
  EXPECT_FALSE(ParseBosPolicy("yes").ok());
}

// --- On real models --------------------------------------------------------------------

// len() of a Python str, counted here on its own: UTF-8 bytes that do not continue a character.
double Utf8Length(const std::string& s) {
  double n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// The log-likelihood of `continuation` after `context`, written out independently of the
// harness: lm-eval's _encode_pair for ASCII text, one fresh Session, one forward pass over
// (context + continuation)[:-1], log-softmax in double.
struct Independent {
  double ll = 0.0;
  bool greedy = true;
};
Independent IndependentScore(const engine::Model& model, std::string context,
                             std::string continuation) {
  while (!context.empty() && context.back() == ' ') {
    continuation.insert(0, 1, ' ');
    context.pop_back();
  }
  const std::vector<TokenId> ctx = *model.Tokenize(context, true);
  const std::vector<TokenId> whole = *model.Tokenize(context + continuation, true);
  const std::vector<TokenId> input(whole.begin(), whole.end() - 1);
  auto session = *engine::Session::Create(model);
  std::vector<float> logits;
  EXPECT_TRUE(session->PrefillAllLogits(input, &logits).ok());
  const size_t vocab = model.info().vocab_size;
  Independent out;
  for (size_t pos = ctx.size(); pos < whole.size(); ++pos) {
    const float* row = logits.data() + (pos - 1) * vocab;
    double max = row[0];
    size_t arg = 0;
    for (size_t v = 1; v < vocab; ++v) {
      if (row[v] > max) max = row[v], arg = v;
    }
    double sum = 0.0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
    out.ll += static_cast<double>(row[whole[pos]]) - max - std::log(sum);
    if (static_cast<TokenId>(arg) != whole[pos]) out.greedy = false;
  }
  return out;
}

class Stories260KHarnessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = engine::testing::SharedPath("models/stories260K/stories260K.bin");
    auto model = engine::Model::Load({.path = path, .num_threads = 1});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  // A failed load in SetUpTestSuite must fail the tests, not crash them on a null model.
  void SetUp() override { ASSERT_NE(model_, nullptr) << "stories260K did not load"; }
  static Task LoadData(const char* task, const std::string& relative) {
    absl::StatusOr<Task> t =
        LoadTask(*FindTask(task), engine::testing::TestDataPath("harness/" + relative));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : Task{};
  }
  static engine::Model* model_;
};
engine::Model* Stories260KHarnessTest::model_ = nullptr;

TEST_F(Stories260KHarnessTest, EncodingMovesWhitespaceAndSlicesTheWhole) {
  const engine::Model& m = *model_;
  // llama2.c's vocabulary asks for BOS (like Llama's tokenizer): requests start with it.
  ASSERT_GE(m.info().bos_id, 0);
  ASSERT_OK_AND_ASSIGN(EncodedRequest a, EncodeRequest(m, "Lily went to the ", "park"));
  ASSERT_OK_AND_ASSIGN(EncodedRequest b, EncodeRequest(m, "Lily went to the", " park"));
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.continuation, b.continuation);
  EXPECT_EQ(a.context.front(), m.info().bos_id);
  const std::vector<TokenId> ctx = *m.Tokenize("Lily went to the", true);
  const std::vector<TokenId> whole = *m.Tokenize("Lily went to the park", true);
  EXPECT_EQ(a.context, ctx);
  EXPECT_EQ(a.continuation, std::vector<TokenId>(whole.begin() + ctx.size(), whole.end()));

  ASSERT_OK_AND_ASSIGN(EncodedRequest never,
                       EncodeRequest(m, "Lily went to the", " park", BosPolicy::kNever));
  EXPECT_EQ(never.context, *m.Tokenize("Lily went to the", false));
  EXPECT_EQ(never.continuation, a.continuation);
  // An empty context is the BOS token alone (lm-eval's prefix_token_id).
  ASSERT_OK_AND_ASSIGN(EncodedRequest empty, EncodeRequest(m, "", "Lily"));
  EXPECT_THAT(empty.context, ElementsAre(m.info().bos_id));
  EXPECT_EQ(empty.continuation, *m.Tokenize("Lily", false));
  const absl::StatusOr<EncodedRequest> nothing = EncodeRequest(m, "Lily", "");
  ASSERT_FALSE(nothing.ok());
  EXPECT_THAT(std::string(nothing.status().message()), HasSubstr("encodes to no tokens"));
}

// Every request of every hand-made task, scored in sequence by one branching scorer (so the
// cache is shared within items and across them), against one full forward pass each.
// merge_rows 0 feeds every unscored row in a call of its own; 1 << 20 never does.
class BranchingTest : public Stories260KHarnessTest,
                      public ::testing::WithParamInterface<int32_t> {};
INSTANTIATE_TEST_SUITE_P(MergeRows, BranchingTest,
                         ::testing::Values(0, kDefaultMergeRows, 1 << 20));

TEST_P(BranchingTest, BranchedScoringEqualsFullSequences) {
  ASSERT_OK_AND_ASSIGN(auto scorer,
                       LoglikelihoodScorer::Create(*model_, {.merge_rows = GetParam()}));
  ASSERT_OK_AND_ASSIGN(auto session, engine::Session::Create(*model_));
  int64_t full_tokens = 0;
  int compared = 0;
  double max_diff = 0.0;
  for (const auto& [task, file] : std::vector<std::pair<const char*, std::string>>{
           {"piqa", "piqa/valid.jsonl"},
           {"hellaswag", "hellaswag/hellaswag_val_full.jsonl"},
           {"arc_easy", "arc_easy/arc_easy.jsonl"},
           {"boolq", "boolq/boolq.jsonl"},
           {"winogrande", "winogrande/winogrande.jsonl"},
           {"lambada_openai", "lambada_openai/lambada_openai.jsonl"}}) {
    const Task t = LoadData(task, file);
    for (const TaskItem& item : t.items) {
      for (const Request& r : item.requests) {
        ASSERT_OK_AND_ASSIGN(EncodedRequest e, EncodeRequest(*model_, r.context, r.continuation));
        ASSERT_OK_AND_ASSIGN(LoglikelihoodResult branched, scorer->Score(e));
        ASSERT_OK_AND_ASSIGN(LoglikelihoodResult full,
                             ScoreFullSequence(*session, e, scorer->window()));
        EXPECT_NEAR(branched.logprob, full.logprob, kLlTolerance) << task << ": " << r.continuation;
        EXPECT_EQ(branched.greedy, full.greedy) << task << ": " << r.continuation;
        EXPECT_EQ(branched.tokens, full.tokens);
        max_diff = std::max(max_diff, std::abs(branched.logprob - full.logprob));
        full_tokens += static_cast<int64_t>(e.context.size() + e.continuation.size() - 1);
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 30);
  // Branching fed fewer tokens than the full passes did.
  EXPECT_LT(scorer->tokens_fed(), full_tokens * 3 / 4);
  RecordProperty("max_abs_ll_difference", absl::StrCat(max_diff));
}

TEST_F(Stories260KHarnessTest, ContextIsPrefilledOnceThenEachChoiceCostsItsTokens) {
  const Task t = LoadData("openbookqa", "openbookqa/openbookqa.jsonl");
  ASSERT_OK_AND_ASSIGN(auto scorer, LoglikelihoodScorer::Create(*model_));
  int64_t expected = 0;
  std::vector<TokenId> first_tokens;
  for (size_t c = 0; c < t.items[0].requests.size(); ++c) {
    const Request& r = t.items[0].requests[c];
    ASSERT_OK_AND_ASSIGN(EncodedRequest e, EncodeRequest(*model_, r.context, r.continuation));
    first_tokens.push_back(e.continuation.front());
    // The first choice feeds context + continuation[:-1]; later ones re-feed the last context
    // token (whose logits row is needed) and their continuation minus its last token.
    expected += c == 0 ? static_cast<int64_t>(e.context.size() + e.continuation.size() - 1)
                       : static_cast<int64_t>(e.continuation.size());
    ASSERT_OK(scorer->Score(e).status());
  }
  // The choices " hot", " cold", " wet", " blue" start with different tokens.
  std::sort(first_tokens.begin(), first_tokens.end());
  ASSERT_EQ(std::unique(first_tokens.begin(), first_tokens.end()), first_tokens.end());
  EXPECT_EQ(scorer->tokens_fed(), expected);
}

TEST_F(Stories260KHarnessTest, TruncatedRequestsBranchLikeFullSequences) {
  const Task t = LoadData("boolq", "boolq/boolq.jsonl");
  constexpr int32_t kWindow = 12;  // shorter than every context: all requests are truncated
  ASSERT_OK_AND_ASSIGN(auto scorer,
                       LoglikelihoodScorer::Create(*model_, {.window = kWindow, .merge_rows = 0}));
  ASSERT_OK_AND_ASSIGN(auto session, engine::Session::Create(*model_));
  for (const TaskItem& item : t.items) {
    for (const Request& r : item.requests) {
      ASSERT_OK_AND_ASSIGN(EncodedRequest e, EncodeRequest(*model_, r.context, r.continuation));
      ASSERT_OK_AND_ASSIGN(LoglikelihoodResult branched, scorer->Score(e));
      ASSERT_OK_AND_ASSIGN(LoglikelihoodResult full, ScoreFullSequence(*session, e, kWindow));
      EXPECT_TRUE(branched.truncated);
      EXPECT_NEAR(branched.logprob, full.logprob, kLlTolerance);
    }
  }
  EXPECT_FALSE(
      LoglikelihoodScorer::Create(*model_, {.window = model_->info().max_seq_len + 1}).ok());
  EXPECT_FALSE(LoglikelihoodScorer::Create(*model_, {.merge_rows = -1}).ok());
}

// Runs a hand-made task through the harness and checks every item against independently
// computed log-likelihoods; returns the independent results for case-specific checks.
std::vector<std::vector<Independent>> CheckTask(const engine::Model& model, const Task& task,
                                                TaskRun* out = nullptr) {
  absl::StatusOr<TaskRun> run = RunTask(model, task, HarnessConfig{});
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return {};
  std::vector<std::vector<Independent>> all;
  double acc = 0, acc_norm = 0;
  for (size_t i = 0; i < task.items.size(); ++i) {
    const TaskItem& item = task.items[i];
    std::vector<Independent> ind;
    int pred = 0, pred_norm = 0;
    for (size_t c = 0; c < item.requests.size(); ++c) {
      ind.push_back(
          IndependentScore(model, item.requests[c].context, item.requests[c].continuation));
      EXPECT_NEAR(run->items[i].choices[c].logprob, ind[c].ll, kLlTolerance)
          << task.spec->name << " item " << i << " choice " << c;
      EXPECT_EQ(run->items[i].choices[c].greedy, ind[c].greedy);
      // First maximum, as np.argmax; acc_norm divides by the length in characters.
      if (ind[c].ll > ind[pred].ll) pred = static_cast<int>(c);
      if (ind[c].ll / Utf8Length(item.choices[c]) >
          ind[pred_norm].ll / Utf8Length(item.choices[pred_norm])) {
        pred_norm = static_cast<int>(c);
      }
    }
    // Distinct choices must not be near ties, or the expectation would hang on float noise.
    for (size_t a = 0; a < ind.size(); ++a) {
      for (size_t b = a + 1; b < ind.size(); ++b) {
        if (item.requests[a].context == item.requests[b].context &&
            item.requests[a].continuation == item.requests[b].continuation) {
          continue;
        }
        EXPECT_GT(std::abs(ind[a].ll - ind[b].ll), 100 * kLlTolerance)
            << task.spec->name << " item " << i;
      }
    }
    EXPECT_EQ(run->items[i].pred, pred) << task.spec->name << " item " << i;
    EXPECT_EQ(run->items[i].pred_norm, pred_norm) << task.spec->name << " item " << i;
    acc += pred == item.gold;
    acc_norm += pred_norm == item.gold;
    all.push_back(ind);
  }
  const double n = static_cast<double>(task.items.size());
  if (task.spec->scoring == TaskScoring::kMultipleChoice) {
    EXPECT_DOUBLE_EQ(run->metrics.acc.mean, acc / n) << task.spec->name;
    if (task.spec->has_acc_norm) {
      EXPECT_DOUBLE_EQ(run->metrics.acc_norm.mean, acc_norm / n) << task.spec->name;
    }
  }
  if (out != nullptr) *out = *std::move(run);
  return all;
}

TEST_F(Stories260KHarnessTest, HandMadeMultipleChoiceTasks) {
  for (const auto& [task, file] : std::vector<std::pair<const char*, std::string>>{
           {"piqa", "piqa/valid.jsonl"},
           {"hellaswag", "hellaswag/hellaswag_val_full.jsonl"},
           {"arc_easy", "arc_easy/arc_easy.jsonl"},
           {"arc_challenge", "arc_challenge/arc_challenge.jsonl"},
           {"boolq", "boolq/boolq.jsonl"},
           {"openbookqa", "openbookqa/openbookqa.jsonl"}}) {
    SCOPED_TRACE(task);
    CheckTask(*model_, LoadData(task, file));
  }
}

TEST_F(Stories260KHarnessTest, TiesAndAccNormByConstruction) {
  // Identical choices score identically, so the first wins: gold 1 is missed (acc 0) and
  // gold 0 is hit (acc 1), for acc and acc_norm alike.
  const std::string jsonl =
      R"({"goal": "Lily has a", "sol1": "red ball.", "sol2": "red ball.", "label": 1})"
      "\n"
      R"({"goal": "Lily has a", "sol1": "red ball.", "sol2": "red ball.", "label": 0})"
      "\n";
  ASSERT_OK_AND_ASSIGN(Task t, ParseTask(*FindTask("piqa"), "ties.jsonl", jsonl, ""));
  TaskRun run;
  CheckTask(*model_, t, &run);
  EXPECT_EQ(run.items[0].choices[0].logprob, run.items[0].choices[1].logprob);
  EXPECT_EQ(run.items[0].pred, 0);
  EXPECT_EQ(run.items[0].pred_norm, 0);
  EXPECT_DOUBLE_EQ(run.metrics.acc.mean, 0.5);
  EXPECT_DOUBLE_EQ(run.metrics.acc_norm.mean, 0.5);

  // A choice that extends another by more tokens has a lower log-likelihood (each added
  // token costs some), so acc picks the short one; acc_norm divides by length in characters
  // and is checked against the independent numbers.
  const std::string longer = R"({"goal": "Tom saw a", "sol1": "dog", )"
                             R"("sol2": "dog and a cat and a bird in the park", "label": 1})"
                             "\n";
  ASSERT_OK_AND_ASSIGN(Task l, ParseTask(*FindTask("piqa"), "long.jsonl", longer, ""));
  // The short choice's tokens are a prefix of the long one's (SentencePiece splits at the
  // spaces), so the long one's log-likelihood is the short one's plus negative terms.
  ASSERT_OK_AND_ASSIGN(
      EncodedRequest short_enc,
      EncodeRequest(*model_, l.items[0].requests[0].context, l.items[0].requests[0].continuation));
  ASSERT_OK_AND_ASSIGN(
      EncodedRequest long_enc,
      EncodeRequest(*model_, l.items[0].requests[1].context, l.items[0].requests[1].continuation));
  ASSERT_GT(long_enc.continuation.size(), short_enc.continuation.size());
  ASSERT_TRUE(std::equal(short_enc.continuation.begin(), short_enc.continuation.end(),
                         long_enc.continuation.begin()));
  const std::vector<std::vector<Independent>> ind = CheckTask(*model_, l, &run);
  ASSERT_EQ(ind.size(), 1u);
  EXPECT_GT(ind[0][0].ll, ind[0][1].ll);
  EXPECT_EQ(run.items[0].pred, 0);
  EXPECT_DOUBLE_EQ(run.metrics.acc.mean, 0.0);
  const int expected_norm =
      ind[0][1].ll / Utf8Length(l.items[0].choices[1]) > ind[0][0].ll / 3 ? 1 : 0;
  EXPECT_EQ(run.items[0].pred_norm, expected_norm);
}

TEST_F(Stories260KHarnessTest, WinograndePartialEvaluation) {
  const Task t = LoadData("winogrande", "winogrande/winogrande.jsonl");
  TaskRun run;
  CheckTask(*model_, t, &run);
  // Partial evaluation: both requests score the same continuation tokens after different
  // contexts (the same number of tokens here).
  for (const ItemResult& r : run.items) EXPECT_EQ(r.choices[0].tokens, r.choices[1].tokens);
  EXPECT_FALSE(run.metrics.has_acc_norm);

  // Two identical contexts tie: the first is chosen.
  const std::string jsonl =
      R"({"context_options": ["Tom and Sam", "Tom and Sam"], "continuation": "ran.", "gold": 1})"
      "\n";
  ASSERT_OK_AND_ASSIGN(Task tie, ParseTask(*FindTask("winogrande"), "tie.jsonl", jsonl, ""));
  CheckTask(*model_, tie, &run);
  EXPECT_EQ(run.items[0].pred, 0);
  EXPECT_DOUBLE_EQ(run.metrics.acc.mean, 0.0);
}

TEST_F(Stories260KHarnessTest, LambadaGreedyContinuation) {
  // The model's own greedy next token after the context, as text: scored as the continuation,
  // every token is the argmax by construction (acc 1). A word the model does not predict
  // next is not (acc 0).
  const std::string context = "Once upon a time, there was a little girl named Lily. She loved to";
  const std::vector<TokenId> ctx = *model_->Tokenize(context, true);
  auto session = *engine::Session::Create(*model_);
  ASSERT_OK(session->Prefill(ctx));
  ASSERT_OK_AND_ASSIGN(TokenId next, session->Sample(engine::SamplingParams{.temperature = 0}));
  std::vector<TokenId> with_next = ctx;
  with_next.push_back(next);
  const std::string text = *model_->Detokenize(with_next);
  const std::string base = *model_->Detokenize(ctx);
  ASSERT_EQ(text.compare(0, base.size(), base), 0);
  const std::string word = text.substr(base.size());  // e.g. " play"
  ASSERT_FALSE(word.empty());
  ASSERT_EQ(word[0], ' ') << "expected a word-initial token, got '" << word << "'";
  const std::string jsonl =
      absl::StrCat(R"({"context": ")", context, R"(", "continuation": ")", word.substr(1), "\"}\n",
                   R"({"context": ")", context, R"(", "continuation": "elephant"})", "\n");
  ASSERT_OK_AND_ASSIGN(Task t, ParseTask(*FindTask("lambada_openai"), "l.jsonl", jsonl, ""));
  TaskRun run;
  const auto ind = CheckTask(*model_, t, &run);
  ASSERT_EQ(ind.size(), 2u);
  EXPECT_TRUE(ind[0][0].greedy);
  EXPECT_FALSE(ind[1][0].greedy);
  EXPECT_TRUE(run.items[0].choices[0].greedy);
  EXPECT_FALSE(run.items[1].choices[0].greedy);
  EXPECT_DOUBLE_EQ(run.metrics.acc.mean, 0.5);
  ASSERT_TRUE(run.metrics.has_ppl);
  // Relative: the branched and full passes may sum in different orders (kLlTolerance).
  const double ppl = std::exp(-(ind[0][0].ll + ind[1][0].ll) / 2);
  EXPECT_NEAR(run.metrics.ppl, ppl, ppl * kLlTolerance);

  // The file's items too (acc from the independent greedy flags).
  const Task file = LoadData("lambada_openai", "lambada_openai/lambada_openai.jsonl");
  const auto file_ind = CheckTask(*model_, file, &run);
  double greedy = 0;
  for (const auto& item : file_ind) greedy += item[0].greedy;
  EXPECT_DOUBLE_EQ(run.metrics.acc.mean, greedy / file_ind.size());
}

// A W4A4 model with a full-precision attention sink (stories260K quantized here, small
// calibration): branching must match full passes with the engine's implicit sink prefix on and
// off; with it on, a request without BOS scores exactly as one that starts with BOS.
TEST(W4a4HarnessTest, BranchingWithTheAttentionSink) {
  const std::string fp_path = engine::testing::SharedPath("models/stories260K/stories260K.bin");
  ASSERT_OK_AND_ASSIGN(auto fp, engine::Model::Load({.path = fp_path, .num_threads = 1}));
  engine::quantizer::QuantizeOptions o;
  o.calibration.samples = 4;
  o.calibration.length = 128;
  o.calibration.seed = 7;
  o.num_threads = 1;
  ASSERT_TRUE(o.sink);
  absl::StatusOr<engine::model::LoadedModel> q = engine::quantizer::QuantizeModel(*fp, o);
  ASSERT_TRUE(q.ok()) << q.status();
  const std::string path = engine::testing::TempDir() + "/harness_w4a4.gguf";
  ASSERT_OK(engine::quantizer::SaveQuantizedModel(*q, path));
  ASSERT_OK_AND_ASSIGN(auto model, engine::Model::Load({.path = path, .num_threads = 1}));
  ASSERT_THAT(model->info().weight_format, HasSubstr("w4a4"));

  absl::StatusOr<Task> t =
      LoadTask(*FindTask("hellaswag"),
               engine::testing::TestDataPath("harness/hellaswag/hellaswag_val_full.jsonl"));
  ASSERT_TRUE(t.ok()) << t.status();
  std::vector<double> with_bos, without_bos;
  for (const bool sink_prefix : {true, false}) {
    for (const BosPolicy bos : {BosPolicy::kTokenizer, BosPolicy::kNever}) {
      SCOPED_TRACE(absl::StrCat("sink_prefix ", sink_prefix, " bos ", static_cast<int>(bos)));
      ASSERT_OK_AND_ASSIGN(auto scorer,
                           LoglikelihoodScorer::Create(*model, {.sink_prefix = sink_prefix}));
      ASSERT_OK_AND_ASSIGN(auto session,
                           engine::Session::Create(*model, {.sink_prefix = sink_prefix}));
      for (const TaskItem& item : t->items) {
        for (const Request& r : item.requests) {
          ASSERT_OK_AND_ASSIGN(EncodedRequest e,
                               EncodeRequest(*model, r.context, r.continuation, bos));
          ASSERT_OK_AND_ASSIGN(LoglikelihoodResult branched, scorer->Score(e));
          ASSERT_OK_AND_ASSIGN(LoglikelihoodResult full,
                               ScoreFullSequence(*session, e, scorer->window()));
          EXPECT_NEAR(branched.logprob, full.logprob, kLlTolerance);
          EXPECT_EQ(branched.greedy, full.greedy);
          if (sink_prefix)
            (bos == BosPolicy::kNever ? without_bos : with_bos).push_back(full.logprob);
        }
      }
    }
  }
  ASSERT_EQ(with_bos.size(), without_bos.size());
  for (size_t i = 0; i < with_bos.size(); ++i) EXPECT_EQ(with_bos[i], without_bos[i]) << i;
}

// SmolLM2's GGUF says add_bos_token = false (its Hugging Face tokenizer adds none either):
// lm-eval's requests carry no BOS, and neither do ours.
TEST(SmolLm2HarnessTest, NoBosAndBranchingMatchesFullSequences) {
  const std::string path = engine::testing::SmolLm2Path();
  if (path.empty()) GTEST_SKIP() << "SmolLM2-135M-Instruct GGUF not in ~/.cache/fp4lm/models";
  ASSERT_OK_AND_ASSIGN(auto model, engine::Model::Load({.path = path}));
  ASSERT_OK_AND_ASSIGN(
      EncodedRequest e,
      EncodeRequest(*model, "Question: How do you make tea?\nAnswer:", " Boil water."));
  EXPECT_EQ(e.context, *model->Tokenize("Question: How do you make tea?\nAnswer:", false));
  EXPECT_NE(e.context.front(), model->info().bos_id);
  ASSERT_OK_AND_ASSIGN(EncodedRequest always,
                       EncodeRequest(*model, "Question: How do you make tea?\nAnswer:",
                                     " Boil water.", BosPolicy::kAlways));
  EXPECT_EQ(always.context.front(), model->info().bos_id);

  absl::StatusOr<Task> t =
      LoadTask(*FindTask("hellaswag"),
               engine::testing::TestDataPath("harness/hellaswag/hellaswag_val_full.jsonl"));
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_OK_AND_ASSIGN(auto scorer, LoglikelihoodScorer::Create(*model));
  ASSERT_OK_AND_ASSIGN(auto session, engine::Session::Create(*model, {.max_seq_len = 256}));
  double max_diff = 0.0;
  for (const TaskItem& item : t->items) {
    for (const Request& r : item.requests) {
      ASSERT_OK_AND_ASSIGN(EncodedRequest enc, EncodeRequest(*model, r.context, r.continuation));
      ASSERT_OK_AND_ASSIGN(LoglikelihoodResult branched, scorer->Score(enc));
      ASSERT_OK_AND_ASSIGN(LoglikelihoodResult full, ScoreFullSequence(*session, enc, 8192));
      EXPECT_NEAR(branched.logprob, full.logprob, kLlTolerance) << r.continuation;
      EXPECT_EQ(branched.greedy, full.greedy);
      max_diff = std::max(max_diff, std::abs(branched.logprob - full.logprob));
    }
  }
  RecordProperty("max_abs_ll_difference", absl::StrCat(max_diff));
}

}  // namespace
}  // namespace fp4lm
