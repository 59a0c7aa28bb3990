// Request encoding, branched log-likelihood scoring and metrics of the zero-shot harness (see
// harness.h). The reference for every rule is lm-evaluation-harness 0.4: lm_eval/api/model.py
// (_encode_pair), lm_eval/models/huggingface.py (_loglikelihood_tokens), lm_eval/api/task.py
// (process_results) and lm_eval/api/metrics.py (mean_stderr).
#include "fp4lm/harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "fp4lm/perplexity.h"

namespace fp4lm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

constexpr std::string_view kLlmFp4Tasks[] = {"boolq",      "piqa",     "hellaswag",
                                             "winogrande", "arc_easy", "arc_challenge"};
constexpr std::string_view kQuarotTasks[] = {"piqa",          "hellaswag",  "arc_easy",
                                             "arc_challenge", "winogrande", "lambada_openai"};
constexpr AverageSpec kAverages[] = {
    {"LLM-FP4 avg", kLlmFp4Tasks, false},
    {"QuaRot avg", kQuarotTasks, true},
};

absl::string_view Abs(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::StatusOr<std::vector<engine::TokenId>> Encode(const engine::Model& model,
                                                    std::string_view text, BosPolicy bos) {
  switch (bos) {
    case BosPolicy::kTokenizer:
      return model.Tokenize(text, /*add_bos=*/true);
    case BosPolicy::kNever:
      return model.Tokenize(text, /*add_bos=*/false);
    case BosPolicy::kAlways: {
      absl::StatusOr<std::vector<engine::TokenId>> tokens = model.Tokenize(text, false);
      if (!tokens.ok()) return tokens.status();
      if (model.info().bos_id >= 0) tokens->insert(tokens->begin(), model.info().bos_id);
      return tokens;
    }
  }
  return absl::InternalError("unknown BOS policy");
}

// np.argmax: the first maximum, or the first NaN if there is one; -1 when empty.
int32_t NumpyArgMax(std::span<const double> values) {
  int32_t best = -1;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isnan(values[i])) return static_cast<int32_t>(i);
    if (best < 0 || values[i] > values[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

}  // namespace

absl::StatusOr<BosPolicy> ParseBosPolicy(std::string_view name) {
  if (name == "auto") return BosPolicy::kTokenizer;
  if (name == "always") return BosPolicy::kAlways;
  if (name == "never") return BosPolicy::kNever;
  return absl::InvalidArgumentError(
      absl::StrCat("expected 'auto', 'always' or 'never', got '", Abs(name), "'"));
}

absl::StatusOr<EncodedRequest> EncodeRequest(const engine::Model& model, std::string_view context,
                                             std::string_view continuation, BosPolicy bos) {
  EncodedRequest out;
  const std::string_view kept = PyRStrip(context);
  const std::string moved_continuation =
      absl::StrCat(Abs(context.substr(kept.size())), Abs(continuation));
  if (kept.empty()) {
    // lm-eval's loglikelihood(): an empty context is the prefix token (BOS, else EOS); if the
    // continuation already starts with it, that token is the context instead.
    absl::StatusOr<std::vector<engine::TokenId>> cont =
        model.Tokenize(moved_continuation, /*add_bos=*/false);
    if (!cont.ok()) return cont.status();
    const engine::TokenId prefix =
        model.info().bos_id >= 0 ? model.info().bos_id : model.info().eos_id;
    if (prefix < 0) {
      return absl::InvalidArgumentError(
          "an empty context needs a BOS or EOS token to condition on; the vocabulary has neither");
    }
    if (!cont->empty() && cont->front() == prefix) {
      out.context.assign(cont->begin(), cont->begin() + 1);
      out.continuation.assign(cont->begin() + 1, cont->end());
    } else {
      out.context = {prefix};
      out.continuation = *std::move(cont);
    }
  } else {
    absl::StatusOr<std::vector<engine::TokenId>> whole =
        Encode(model, absl::StrCat(Abs(kept), moved_continuation), bos);
    if (!whole.ok()) return whole.status();
    absl::StatusOr<std::vector<engine::TokenId>> ctx = Encode(model, kept, bos);
    if (!ctx.ok()) return ctx.status();
    // lm-eval slices by length even where the tokenization of the context is not a prefix of
    // the whole (a merge across the boundary); so do we.
    const size_t n = std::min(ctx->size(), whole->size());
    out.context = *std::move(ctx);
    out.continuation.assign(whole->begin() + n, whole->end());
  }
  if (out.continuation.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the continuation '", Abs(continuation),
                                                   "' encodes to no tokens after its context"));
  }
  return out;
}

absl::StatusOr<RequestInput> MakeRequestInput(const EncodedRequest& request, int32_t window) {
  if (window < 1)
    return absl::InvalidArgumentError(absl::StrCat("window must be >= 1, got ", window));
  if (request.context.empty() || request.continuation.empty()) {
    return absl::InvalidArgumentError("a request needs context and continuation tokens");
  }
  if (request.continuation.size() > static_cast<size_t>(window)) {
    return absl::InvalidArgumentError(absl::StrCat("the continuation has ",
                                                   request.continuation.size(),
                                                   " tokens, more than the window of ", window));
  }
  RequestInput out;
  const size_t total = request.context.size() + request.continuation.size();
  const size_t keep = std::min(total, static_cast<size_t>(window) + 1);
  out.truncated = keep < total;
  // (context + continuation)[-(window + 1):][:-1]
  std::vector<engine::TokenId> all;
  all.reserve(total);
  all.insert(all.end(), request.context.begin(), request.context.end());
  all.insert(all.end(), request.continuation.begin(), request.continuation.end());
  out.input.assign(all.end() - keep, all.end() - 1);
  out.first_row = static_cast<int32_t>(out.input.size() - request.continuation.size());
  return out;
}

LoglikelihoodResult ScoreRows(std::span<const float> rows, int32_t vocab,
                              std::span<const engine::TokenId> tokens) {
  LoglikelihoodResult r;
  r.greedy = true;
  r.tokens = static_cast<int32_t>(tokens.size());
  const size_t v = static_cast<size_t>(vocab);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::span<const float> row = rows.subspan(i * v, v);
    r.logprob -= NllOfNextToken(row, tokens[i]);
    if (ArgMax(row) != tokens[i]) r.greedy = false;
  }
  return r;
}

absl::StatusOr<std::unique_ptr<LoglikelihoodScorer>> LoglikelihoodScorer::Create(
    const engine::Model& model, const ScorerOptions& options) {
  const int32_t limit = model.info().max_seq_len;
  ScorerOptions o = options;
  if (o.window < 0)
    return absl::InvalidArgumentError(absl::StrCat("window must be >= 0, got ", o.window));
  if (o.window == 0) o.window = limit;
  if (limit > 0 && o.window > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("window ", o.window, " exceeds the model's context window of ", limit));
  }
  if (o.window < 2) {
    return absl::InvalidArgumentError(absl::StrCat("window ", o.window, " is too small to score"));
  }
  if (o.merge_rows < 0) {
    return absl::InvalidArgumentError(absl::StrCat("merge_rows must be >= 0, got ", o.merge_rows));
  }
  return std::unique_ptr<LoglikelihoodScorer>(new LoglikelihoodScorer(model, o));
}

absl::Status LoglikelihoodScorer::EnsureCapacity(int32_t tokens) {
  if (session_ != nullptr && session_->capacity() >= tokens) return absl::OkStatus();
  // The KV cache grows in powers of two up to the window: a 8192-token cache for a 100-token
  // question would cost memory and nothing else.
  int32_t capacity = 256;
  while (capacity < tokens) capacity *= 2;
  capacity = std::min(capacity, options_.window);
  absl::StatusOr<std::unique_ptr<engine::Session>> session = engine::Session::Create(
      model_, engine::SessionOptions{.max_seq_len = capacity, .sink_prefix = options_.sink_prefix});
  if (!session.ok()) return session.status();
  session_ = *std::move(session);
  cached_.clear();
  return absl::OkStatus();
}

absl::StatusOr<LoglikelihoodResult> LoglikelihoodScorer::Score(const EncodedRequest& request) {
  absl::StatusOr<RequestInput> in = MakeRequestInput(request, options_.window);
  if (!in.ok()) return in.status();
  const std::vector<engine::TokenId>& input = in->input;
  const int32_t length = static_cast<int32_t>(input.size());
  const int32_t first_row = in->first_row;
  // An exact repeat of the previous request (two identical choices) is scored once, so equal
  // inputs get equal scores: re-fed in a smaller batch it could differ in the last bits (the
  // kernels pick their summation order by batch size) and break the tie arbitrarily.
  if (last_ != nullptr && last_->input == input && last_->continuation == request.continuation) {
    return last_->result;
  }
  if (absl::Status s = EnsureCapacity(length); !s.ok()) return s;

  // Keep the common prefix, but re-feed at least the first scored row's token: its logits
  // row is needed and the session keeps only the last one.
  const size_t common =
      std::mismatch(cached_.begin(), cached_.end(), input.begin(), input.end()).first -
      cached_.begin();
  const int32_t keep = std::min<int32_t>(static_cast<int32_t>(common), first_row);
  if (absl::Status s = session_->Rewind(keep); !s.ok()) return s;
  cached_.resize(keep);
  const std::span<const engine::TokenId> tokens(input);
  // A forward call has a fixed cost (every weight is read once) worth a few tokens; the output
  // head costs a fraction of a token per row. A short unscored stretch therefore rides along
  // in the scored call, a long one (a BoolQ passage) gets its own call without logits.
  int32_t first_fed = first_row;
  if (first_row - keep <= options_.merge_rows) {
    first_fed = keep;
  } else if (absl::Status s = session_->Prefill(tokens.subspan(keep, first_row - keep)); !s.ok()) {
    cached_.assign(input.begin(), input.begin() + session_->position());
    return s;
  }
  absl::Status s = session_->PrefillAllLogits(tokens.subspan(first_fed), &logits_);
  cached_.assign(input.begin(), input.begin() + session_->position());
  if (!s.ok()) return s;
  tokens_fed_ += length - keep;

  const size_t vocab = static_cast<size_t>(model_.info().vocab_size);
  const std::span<const float> rows =
      std::span<const float>(logits_).subspan(static_cast<size_t>(first_row - first_fed) * vocab);
  const std::span<const engine::TokenId> continuation(request.continuation);
  LoglikelihoodResult r = ScoreRows(rows, model_.info().vocab_size, continuation);
  r.truncated = in->truncated;
  last_ = std::make_unique<LastRequest>(
      LastRequest{.input = input, .continuation = request.continuation, .result = r});
  return r;
}

absl::StatusOr<LoglikelihoodResult> ScoreFullSequence(engine::Session& session,
                                                      const EncodedRequest& request,
                                                      int32_t window) {
  absl::StatusOr<RequestInput> in = MakeRequestInput(request, window);
  if (!in.ok()) return in.status();
  if (absl::Status s = session.Rewind(0); !s.ok()) return s;
  std::vector<float> logits;
  if (absl::Status s = session.PrefillAllLogits(in->input, &logits); !s.ok()) return s;
  const int32_t vocab = static_cast<int32_t>(logits.size() / in->input.size());
  const std::span<const float> rows =
      std::span<const float>(logits).subspan(static_cast<size_t>(in->first_row) * vocab);
  LoglikelihoodResult r = ScoreRows(rows, vocab, request.continuation);
  r.truncated = in->truncated;
  return r;
}

void Decide(ItemResult& result, std::span<const std::string> choice_texts) {
  std::vector<double> ll, norm;
  for (size_t i = 0; i < result.choices.size(); ++i) {
    ll.push_back(result.choices[i].logprob);
    const double len =
        i < choice_texts.size() ? static_cast<double>(CodePointCount(choice_texts[i])) : 1.0;
    norm.push_back(ll.back() / len);
  }
  result.pred = NumpyArgMax(ll);
  result.pred_norm = NumpyArgMax(norm);
}

MeanStderr MeanWithStderr(std::span<const double> values) {
  MeanStderr out;
  const size_t n = values.size();
  if (n == 0) return {kNaN, kNaN};
  double sum = 0.0;
  for (const double v : values) sum += v;
  out.mean = sum / n;
  if (n < 2) {
    out.stderr_ = kNaN;
    return out;
  }
  double ss = 0.0;
  for (const double v : values) ss += (v - out.mean) * (v - out.mean);
  out.stderr_ = std::sqrt(ss / (n - 1)) / std::sqrt(static_cast<double>(n));
  return out;
}

TaskMetrics ComputeMetrics(const Task& task, std::span<const ItemResult> results) {
  TaskMetrics m;
  m.n = static_cast<int64_t>(results.size());
  std::vector<double> acc, acc_norm, ll;
  for (size_t i = 0; i < results.size() && i < task.items.size(); ++i) {
    const ItemResult& r = results[i];
    const int32_t gold = task.items[i].gold;
    if (task.spec->scoring == TaskScoring::kGreedyContinuation) {
      const bool greedy = !r.choices.empty() && r.choices[0].greedy;
      acc.push_back(greedy ? 1.0 : 0.0);
      if (!r.choices.empty()) ll.push_back(r.choices[0].logprob);
    } else {
      acc.push_back(r.pred == gold ? 1.0 : 0.0);
      acc_norm.push_back(r.pred_norm == gold ? 1.0 : 0.0);
    }
  }
  m.acc = MeanWithStderr(acc);
  if (task.spec->has_acc_norm && task.spec->scoring == TaskScoring::kMultipleChoice) {
    m.has_acc_norm = true;
    m.acc_norm = MeanWithStderr(acc_norm);
  }
  if (task.spec->scoring == TaskScoring::kGreedyContinuation) {
    const MeanStderr mean_ll = MeanWithStderr(ll);
    m.has_ppl = true;
    m.ppl = std::exp(-mean_ll.mean);
    m.ppl_stderr = m.ppl * mean_ll.stderr_;
  }
  return m;
}

absl::StatusOr<TaskRun> RunTask(const engine::Model& model, const Task& task,
                                const HarnessConfig& config, const HarnessProgressFn& progress) {
  if (task.spec == nullptr || task.spec->scoring == TaskScoring::kPerplexity) {
    return absl::InvalidArgumentError("RunTask scores multiple-choice and LAMBADA-style tasks");
  }
  absl::StatusOr<std::unique_ptr<LoglikelihoodScorer>> scorer = LoglikelihoodScorer::Create(
      model, ScorerOptions{.window = config.window, .sink_prefix = config.sink_prefix});
  if (!scorer.ok()) return scorer.status();
  TaskRun run;
  run.items.reserve(task.items.size());
  HarnessProgress report{.total = static_cast<int64_t>(task.items.size())};
  if (progress) progress(report);
  const auto start = std::chrono::steady_clock::now();
  for (const TaskItem& item : task.items) {
    ItemResult result;
    for (size_t c = 0; c < item.requests.size(); ++c) {
      const Request& request = item.requests[c];
      auto where = [&](const absl::Status& s) {
        return absl::Status(s.code(), absl::StrCat(task.file, ": ", Abs(task.spec->name), " item ",
                                                   item.doc, ", choice ", c, ": ", s.message()));
      };
      absl::StatusOr<EncodedRequest> encoded =
          EncodeRequest(model, request.context, request.continuation, config.bos);
      if (!encoded.ok()) return where(encoded.status());
      absl::StatusOr<LoglikelihoodResult> scored = (*scorer)->Score(*encoded);
      if (!scored.ok()) return where(scored.status());
      if (!std::isfinite(scored->logprob)) {
        return where(
            absl::InternalError("the log-likelihood is not finite; the logits hold NaN or Inf"));
      }
      if (scored->truncated) ++run.truncated;
      result.choices.push_back(*scored);
    }
    Decide(result, item.choices);
    run.items.push_back(std::move(result));
    report.done = static_cast<int64_t>(run.items.size());
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report.tokens_fed = (*scorer)->tokens_fed();
    if (progress) progress(report);
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.tokens_fed = (*scorer)->tokens_fed();
  run.metrics = ComputeMetrics(task, run.items);
  return run;
}

std::span<const AverageSpec> PaperAverages() { return kAverages; }

double AverageMetric(const AverageSpec& average, const TaskMetrics& metrics) {
  return average.prefer_acc_norm && metrics.has_acc_norm ? metrics.acc_norm.mean : metrics.acc.mean;
}

}  // namespace fp4lm
