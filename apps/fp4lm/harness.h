// The zero-shot harness of `fp4lm eval --tasks`: lm-evaluation-harness's request encoding
// (_encode_pair), log-likelihood scoring with a KV cache shared by the choices of an item
// (prefill the context once, Rewind to branch), and the metrics with their standard errors.
// Task files and templates are in harness_tasks.h; printing is in eval.cc.
#ifndef FP4LM_APPS_FP4LM_HARNESS_H_
#define FP4LM_APPS_FP4LM_HARNESS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "fp4lm/harness_tasks.h"

namespace fp4lm {

// Whether request encodings start with the vocabulary's BOS token.
enum class BosPolicy {
  kTokenizer,  // as the tokenizer prescribes (lm-eval's HF default): GGUF add_bos_token, etc.
  kAlways,     // prepend BOS when the vocabulary has one (e.g. for a W4A4 attention sink)
  kNever,
};
// "auto" / "always" / "never".
absl::StatusOr<BosPolicy> ParseBosPolicy(std::string_view name);

// A request in tokens: lm-eval scores `continuation` after `context`.
struct EncodedRequest {
  std::vector<engine::TokenId> context;
  std::vector<engine::TokenId> continuation;
};

// lm-eval's _encode_pair: whitespace at the end of the context moves to the front of the
// continuation; context tokens = tokens(context), continuation tokens =
// tokens(context + continuation)[len(context tokens):]. An empty context becomes the BOS (or,
// without one, EOS) token, as lm-eval's prefix_token_id. InvalidArgument if the continuation
// encodes to no tokens.
absl::StatusOr<EncodedRequest> EncodeRequest(const engine::Model& model, std::string_view context,
                                             std::string_view continuation,
                                             BosPolicy bos = BosPolicy::kTokenizer);

// The log-likelihood of one continuation: the sum over its tokens of log softmax (in double),
// and whether every token is the argmax of its row (lm-eval's is_greedy).
struct LoglikelihoodResult {
  double logprob = 0.0;
  bool greedy = false;
  int32_t tokens = 0;      // continuation tokens scored
  bool truncated = false;  // context + continuation exceeded the window (left-truncated)
};

// The tokens fed for a request and the first scored position, after lm-eval's left truncation
// to `window` tokens: input = (context + continuation)[-(window + 1):][:-1]; rows
// [first_row, input.size()) predict the continuation.
struct RequestInput {
  std::vector<engine::TokenId> input;
  int32_t first_row = 0;
  bool truncated = false;
};
absl::StatusOr<RequestInput> MakeRequestInput(const EncodedRequest& request, int32_t window);

// A forward call has a fixed cost (every weight is read once) worth several tokens, while the
// output head costs a fraction of a token per row. Up to this many unscored rows are therefore
// fed in the same call as the scored ones (their logits computed and dropped); a longer
// stretch (a BoolQ passage) gets a call of its own without logits. Measured on SmolLM2-135M,
// FP32 on the CPU: ~45 ms per call, ~7 ms per token with logits, ~1.5 ms of it the output head.
inline constexpr int32_t kDefaultMergeRows = 24;

struct ScorerOptions {
  int32_t window = 0;  // 0 = the model's context window (lm-eval's max_length)
  int32_t merge_rows = kDefaultMergeRows;
  // SessionOptions::sink_prefix: W4A4 models that store a full-precision attention sink get it
  // in front of every request that does not start with it (the engine's default).
  bool sink_prefix = true;
};

// Scores requests on one Session. Consecutive requests share the KV cache of their common
// token prefix: the cache is rewound to min(common prefix, first scored row) and only the rest
// is fed, so the context of a multiple-choice item is prefilled once and each choice costs its
// own tokens plus one.
class LoglikelihoodScorer {
 public:
  static absl::StatusOr<std::unique_ptr<LoglikelihoodScorer>> Create(
      const engine::Model& model, const ScorerOptions& options = {});
  absl::StatusOr<LoglikelihoodResult> Score(const EncodedRequest& request);

  int32_t window() const { return options_.window; }
  int64_t tokens_fed() const { return tokens_fed_; }

 private:
  LoglikelihoodScorer(const engine::Model& model, const ScorerOptions& options)
      : model_(model), options_(options) {}
  absl::Status EnsureCapacity(int32_t tokens);

  const engine::Model& model_;
  ScorerOptions options_;  // window resolved
  std::unique_ptr<engine::Session> session_;
  std::vector<engine::TokenId> cached_;  // the tokens in the session's KV cache
  std::vector<float> logits_;
  int64_t tokens_fed_ = 0;
  struct LastRequest {
    std::vector<engine::TokenId> input;
    std::vector<engine::TokenId> continuation;
    LoglikelihoodResult result;
  };
  std::unique_ptr<LastRequest> last_;  // the previous request and its score
};

// The same score from one plain forward pass of the whole input from an empty cache (no
// branching); the reference the branching test compares against. `window` must be resolved.
absl::StatusOr<LoglikelihoodResult> ScoreFullSequence(engine::Session& session,
                                                      const EncodedRequest& request,
                                                      int32_t window);

// Sum of log softmax(row)[token] over rows, in double, and whether each token is its row's
// argmax (first maximum on ties, like torch.argmax).
LoglikelihoodResult ScoreRows(std::span<const float> rows, int32_t vocab,
                              std::span<const engine::TokenId> tokens);

// One item scored by one model.
struct ItemResult {
  std::vector<LoglikelihoodResult> choices;
  int32_t pred = -1;       // argmax of logprob (first on ties, like np.argmax)
  int32_t pred_norm = -1;  // argmax of logprob / len(choice) in characters
};
// pred and pred_norm of scored choices; `choice_texts` gives acc_norm's lengths.
void Decide(ItemResult& result, std::span<const std::string> choice_texts);

// Mean of 0/1 (or any) values and its standard error as lm-eval's mean_stderr:
// sample standard deviation (n - 1) / sqrt(n). stderr is NaN for n < 2.
struct MeanStderr {
  double mean = 0.0;
  double stderr_ = 0.0;
};
MeanStderr MeanWithStderr(std::span<const double> values);

struct TaskMetrics {
  int64_t n = 0;
  MeanStderr acc;
  MeanStderr acc_norm;  // kMultipleChoice tasks with has_acc_norm
  bool has_acc_norm = false;
  // kGreedyContinuation: exp(-mean log-likelihood); stderr by the delta method (lm-eval
  // bootstraps it instead).
  double ppl = 0.0;
  double ppl_stderr = 0.0;
  bool has_ppl = false;
};
TaskMetrics ComputeMetrics(const Task& task, std::span<const ItemResult> results);

// Progress of one task on one model, reported after every item (and once before the first).
struct HarnessProgress {
  int64_t done = 0;
  int64_t total = 0;
  double seconds = 0.0;
  int64_t tokens_fed = 0;
};
using HarnessProgressFn = std::function<void(const HarnessProgress&)>;

struct HarnessConfig {
  int32_t window = 0;  // 0 = the model's context window
  BosPolicy bos = BosPolicy::kTokenizer;
  bool sink_prefix = true;  // ScorerOptions::sink_prefix
};

struct TaskRun {
  std::vector<ItemResult> items;
  TaskMetrics metrics;
  double seconds = 0.0;
  int64_t tokens_fed = 0;
  int64_t truncated = 0;  // requests left-truncated to the window
};

// Scores every item of a multiple-choice or greedy-continuation task on `model`.
absl::StatusOr<TaskRun> RunTask(const engine::Model& model, const Task& task,
                                const HarnessConfig& config,
                                const HarnessProgressFn& progress = {});

// The papers' averages, in percent of accuracy. LLM-FP4: acc over BoolQ, PIQA, HellaSwag,
// WinoGrande, ARC-e, ARC-c. QuaRot/FlatQuant: acc_norm where the task defines it, else acc,
// over PIQA, HellaSwag, ARC-e, ARC-c, WinoGrande, LAMBADA.
struct AverageSpec {
  std::string_view name;
  std::span<const std::string_view> tasks;
  bool prefer_acc_norm;
};
std::span<const AverageSpec> PaperAverages();
// The accuracy an average takes from a task's metrics.
double AverageMetric(const AverageSpec& average, const TaskMetrics& metrics);

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_HARNESS_H_
