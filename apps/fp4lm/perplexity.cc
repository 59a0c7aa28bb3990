// Perplexity and KL divergence for `fp4lm eval` (see perplexity.h). All reductions over the
// vocabulary run in double: a 49152-entry sum of float exps loses the digits that separate a
// good W4A4 model from a slightly worse one.
#include "fp4lm/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fp4lm {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int32_t kDefaultCtx = 2048;

// sum_i p_ref[i] * (log p_ref[i] - log p[i]) given both log-sum-exps. A token the reference
// gives probability 0 adds nothing (0 log 0 = 0), even where the model's logit is -inf.
double KlGivenLse(std::span<const float> ref_row, double ref_lse, std::span<const float> row,
                  double lse) {
  double sum = 0.0;
  for (size_t i = 0; i < row.size(); ++i) {
    const double ref_logp = static_cast<double>(ref_row[i]) - ref_lse;
    const double p = std::exp(ref_logp);
    if (p == 0.0) continue;
    sum += p * (ref_logp - (static_cast<double>(row[i]) - lse));
  }
  return sum;
}

std::string WindowName(const Window& w, int32_t index) {
  return absl::StrCat("window ", index + 1, " (tokens ", w.begin, "..", w.begin + w.length - 1,
                      ")");
}

// The tokenization of `text` as the protocol wants it, and the BOS that llamacpp puts first in
// each window (-1 when the vocabulary adds none).
struct TokenStream {
  std::vector<engine::TokenId> tokens;
  engine::TokenId window_bos = -1;
};

absl::StatusOr<TokenStream> Tokenize(const engine::Model& model, std::string_view text,
                                     PplProtocol protocol) {
  TokenStream out;
  absl::StatusOr<std::vector<engine::TokenId>> tokens = model.Tokenize(text, /*add_bos=*/false);
  if (!tokens.ok()) return tokens.status();
  out.tokens = *std::move(tokens);
  if (protocol == PplProtocol::kLlamaCpp) {
    // llama-perplexity tokenizes with add_special (BOS first when llama_vocab_get_add_bos) and
    // then also overwrites each chunk's first token with BOS, so windows start one token
    // earlier than without it. Encoding "" with add_bos yields exactly that BOS, or nothing.
    absl::StatusOr<std::vector<engine::TokenId>> bos = model.Tokenize("", /*add_bos=*/true);
    if (!bos.ok()) return bos.status();
    if (!bos->empty()) {
      out.window_bos = bos->front();
      out.tokens.insert(out.tokens.begin(), out.window_bos);
    }
  }
  return out;
}

absl::Status CheckSameTokens(const TokenStream& model, const TokenStream& ref) {
  const auto& a = model.tokens;
  const auto& b = ref.tokens;
  const size_t n = std::min(a.size(), b.size());
  const size_t diff = std::mismatch(a.begin(), a.begin() + n, b.begin()).first - a.begin();
  if (diff == n && a.size() == b.size() && model.window_bos == ref.window_bos) {
    return absl::OkStatus();
  }
  std::string detail =
      diff < n ? absl::StrCat("first difference at token ", diff, ": id ", a[diff], " vs ", b[diff])
               : absl::StrCat("BOS ", model.window_bos, " vs ", ref.window_bos);
  return absl::InvalidArgumentError(absl::StrCat(
      "the reference model tokenizes the text differently (", a.size(), " tokens vs ", b.size(),
      ", ", detail, "); KL divergence needs the same tokenizer"));
}

// The window length: --ctx, or 2048 capped by the models' context windows.
absl::StatusOr<int32_t> ResolveCtx(const engine::Model& model, const engine::Model* ref_model,
                                   int32_t requested) {
  int32_t limit = model.info().max_seq_len;
  if (ref_model != nullptr && ref_model->info().max_seq_len > 0) {
    limit = limit > 0 ? std::min(limit, ref_model->info().max_seq_len)
                      : ref_model->info().max_seq_len;
  }
  if (requested < 0) {
    return absl::InvalidArgumentError(absl::StrCat("ctx must be >= 0, got ", requested));
  }
  if (requested == 0) return limit > 0 ? std::min(kDefaultCtx, limit) : kDefaultCtx;
  if (limit > 0 && requested > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("ctx ", requested, " exceeds the context window of ",
                     ref_model != nullptr ? "the models" : "the model", " (", limit, " tokens)"));
  }
  return requested;
}

// Runs one window through a session and returns its [length, vocab] logits in `logits`.
absl::Status RunWindow(engine::Session& session, std::span<const engine::TokenId> input,
                       int32_t vocab, std::vector<float>& logits, const char* which,
                       const std::string& window_name) {
  if (absl::Status s = session.Rewind(0); !s.ok()) return s;
  if (absl::Status s = session.PrefillAllLogits(input, &logits); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(which, ", ", window_name, ": ", s.message()));
  }
  if (logits.size() != input.size() * static_cast<size_t>(vocab)) {
    return absl::InternalError(absl::StrCat(which, ", ", window_name, ": expected ",
                                            input.size(), " x ", vocab, " logits, got ",
                                            logits.size()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PplProtocol> ParsePplProtocol(std::string_view name) {
  if (name == "papers") return PplProtocol::kPapers;
  if (name == "llamacpp") return PplProtocol::kLlamaCpp;
  return absl::InvalidArgumentError(absl::StrCat("expected 'papers' or 'llamacpp', got '",
                                                 absl::string_view(name.data(), name.size()),
                                                 "'"));
}

const char* PplProtocolName(PplProtocol protocol) {
  return protocol == PplProtocol::kLlamaCpp ? "llamacpp" : "papers";
}

double LogSumExp(std::span<const float> row) {
  if (row.empty()) return kNaN;
  const double max = *std::max_element(row.begin(), row.end());
  if (!std::isfinite(max)) return kNaN;
  double sum = 0.0;
  for (const float x : row) sum += std::exp(static_cast<double>(x) - max);
  return max + std::log(sum);
}

double NllOfNextToken(std::span<const float> logits_row, int target) {
  return LogSumExp(logits_row) - static_cast<double>(logits_row[target]);
}

double KlDivergence(std::span<const float> ref_row, std::span<const float> row) {
  return KlGivenLse(ref_row, LogSumExp(ref_row), row, LogSumExp(row));
}

int ArgMax(std::span<const float> row) {
  if (row.empty()) return -1;
  return static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
}

int64_t WindowPlan::scored_tokens() const {
  int64_t n = 0;
  for (const Window& w : windows) n += w.scored();
  return n;
}

absl::StatusOr<WindowPlan> MakeWindows(int64_t n_tokens, int32_t ctx, PplProtocol protocol,
                                       int32_t max_windows) {
  // llamacpp follows perplexity() in ggml-org/llama.cpp tools/perplexity/perplexity.cpp
  // (commit 050fc7f3): n_chunk = n_tokens / n_ctx non-overlapping chunks, "first = n_ctx/2",
  // and process_logits() scores the n_ctx - first - 1 tokens after position `first` with logit
  // rows first..n_ctx-2, i.e. window positions [ctx/2 + 1, ctx). llama.cpp refuses texts under
  // 2 * n_ctx tokens; one window is enough here. Papers score all but the first token.
  const int32_t first_scored = protocol == PplProtocol::kLlamaCpp ? ctx / 2 + 1 : 1;
  const int32_t min_ctx = protocol == PplProtocol::kLlamaCpp ? 3 : 2;
  if (ctx < min_ctx) {
    return absl::InvalidArgumentError(absl::StrCat("ctx must be at least ", min_ctx,
                                                   " tokens for the ", PplProtocolName(protocol),
                                                   " protocol to score a token, got ", ctx));
  }
  if (max_windows < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the number of windows must be >= 0 (0 = all), got ", max_windows));
  }
  int64_t count = n_tokens / ctx;
  if (count == 0) {
    return absl::InvalidArgumentError(absl::StrCat("the text has ", n_tokens,
                                                   " tokens, fewer than one window of ", ctx,
                                                   "; use a longer text or a smaller ctx"));
  }
  if (max_windows > 0) count = std::min<int64_t>(count, max_windows);
  WindowPlan plan;
  plan.windows.reserve(count);
  for (int64_t i = 0; i < count; ++i) {
    plan.windows.push_back(Window{.begin = i * ctx, .length = ctx, .first_scored = first_scored});
  }
  return plan;
}

void EvalAccumulator::AddNll(double nll) {
  ++count_;
  nll_sum_ += nll;
  const double delta = nll - nll_running_mean_;
  nll_running_mean_ += delta / count_;
  nll_m2_ += delta * (nll - nll_running_mean_);
}

double EvalAccumulator::Add(std::span<const float> row, int target) {
  const double nll = NllOfNextToken(row, target);
  AddNll(nll);
  return nll;
}

double EvalAccumulator::Add(std::span<const float> row, std::span<const float> ref_row,
                            int target) {
  // One log-sum-exp per row serves the NLL, the reference NLL and the KL.
  const double lse = LogSumExp(row);
  const double ref_lse = LogSumExp(ref_row);
  const double nll = lse - static_cast<double>(row[target]);
  const double kl = KlGivenLse(ref_row, ref_lse, row, lse);
  AddNll(nll);
  ++ref_count_;
  ref_nll_sum_ += ref_lse - static_cast<double>(ref_row[target]);
  kld_sum_ += kl;
  if (ArgMax(row) == ArgMax(ref_row)) ++same_top_;
  return kl;
}

double EvalAccumulator::mean_nll() const { return count_ > 0 ? nll_sum_ / count_ : kNaN; }

double EvalAccumulator::ppl_stderr() const {
  if (count_ < 2) return kNaN;
  // Standard error of the mean NLL, sqrt(var / (n - 1)) with the population variance, times
  // d exp(x)/dx: llama-perplexity's "PPL = x +/- y".
  const double var = nll_m2_ / count_;
  return ppl() * std::sqrt(var / (count_ - 1));
}

double EvalAccumulator::ref_mean_nll() const {
  return ref_count_ > 0 ? ref_nll_sum_ / ref_count_ : kNaN;
}

double EvalAccumulator::kld_mean() const { return ref_count_ > 0 ? kld_sum_ / ref_count_ : kNaN; }

double EvalAccumulator::top1_agreement_percent() const {
  return ref_count_ > 0 ? 100.0 * static_cast<double>(same_top_) / ref_count_ : kNaN;
}

bool EvalAccumulator::all_finite() const {
  return std::isfinite(nll_sum_) && std::isfinite(ref_nll_sum_) && std::isfinite(kld_sum_);
}

absl::StatusOr<EvalResult> EvaluatePerplexity(const engine::Model& model,
                                              const engine::Model* ref_model,
                                              std::string_view text, const EvalConfig& config,
                                              const EvalProgressFn& progress) {
  absl::StatusOr<int32_t> ctx = ResolveCtx(model, ref_model, config.ctx);
  if (!ctx.ok()) return ctx.status();
  const int32_t vocab = model.info().vocab_size;
  if (ref_model != nullptr && ref_model->info().vocab_size != vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("the reference model has a vocabulary of ", ref_model->info().vocab_size,
                     " tokens, the model ", vocab, "; KL divergence needs the same vocabulary"));
  }
  absl::StatusOr<TokenStream> stream = Tokenize(model, text, config.protocol);
  if (!stream.ok()) return stream.status();
  if (ref_model != nullptr) {
    absl::StatusOr<TokenStream> ref_stream = Tokenize(*ref_model, text, config.protocol);
    if (!ref_stream.ok()) return ref_stream.status();
    if (absl::Status s = CheckSameTokens(*stream, *ref_stream); !s.ok()) return s;
  }
  const std::vector<engine::TokenId>& tokens = stream->tokens;
  absl::StatusOr<WindowPlan> plan =
      MakeWindows(static_cast<int64_t>(tokens.size()), *ctx, config.protocol, config.max_windows);
  if (!plan.ok()) return plan.status();

  // One session per model for the whole run: Rewind(0) per window keeps the KV cache and the
  // scratch buffers allocated once.
  const engine::SessionOptions session_options{.max_seq_len = *ctx};
  absl::StatusOr<std::unique_ptr<engine::Session>> session =
      engine::Session::Create(model, session_options);
  if (!session.ok()) return session.status();
  std::unique_ptr<engine::Session> ref_session;
  if (ref_model != nullptr) {
    absl::StatusOr<std::unique_ptr<engine::Session>> s =
        engine::Session::Create(*ref_model, session_options);
    if (!s.ok()) return s.status();
    ref_session = *std::move(s);
  }

  EvalProgress report{.n_tokens = static_cast<int64_t>(tokens.size()),
                      .ctx = *ctx,
                      .windows_total = static_cast<int32_t>(plan->windows.size()),
                      .running_ppl = kNaN};
  if (progress) progress(report);

  const auto start = std::chrono::steady_clock::now();
  EvalAccumulator acc;
  std::vector<engine::TokenId> input(*ctx);  // the window, first token maybe replaced by BOS
  std::vector<float> logits;                 // [ctx, vocab], reused by every window
  std::vector<float> ref_logits;
  const size_t v = static_cast<size_t>(vocab);
  for (size_t wi = 0; wi < plan->windows.size(); ++wi) {
    const Window& w = plan->windows[wi];
    const std::string name = WindowName(w, static_cast<int32_t>(wi));
    const std::span<const engine::TokenId> window(tokens.data() + w.begin, w.length);
    std::span<const engine::TokenId> fed = window;
    if (stream->window_bos >= 0) {
      std::copy(window.begin(), window.end(), input.begin());
      input[0] = stream->window_bos;
      fed = std::span<const engine::TokenId>(input.data(), w.length);
    }
    if (absl::Status s = RunWindow(**session, fed, vocab, logits, "model", name); !s.ok()) {
      return s;
    }
    if (ref_session != nullptr) {
      if (absl::Status s = RunWindow(*ref_session, fed, vocab, ref_logits, "reference", name);
          !s.ok()) {
        return s;
      }
    }
    // The target is the stream's token, never the BOS that replaced it (it is never scored).
    for (int32_t pos = w.first_scored; pos < w.length; ++pos) {
      const std::span<const float> row(logits.data() + (pos - 1) * v, v);
      const int target = window[pos];
      const double value = ref_session != nullptr
                               ? acc.Add(row, std::span<const float>(
                                                  ref_logits.data() + (pos - 1) * v, v),
                                         target)
                               : acc.Add(row, target);
      if (!std::isfinite(value) || !acc.all_finite()) {
        return absl::InternalError(absl::StrCat(
            name, ", token ", pos, ": the NLL", ref_session != nullptr ? " or KL divergence" : "",
            " is not finite; the logits hold NaN or Inf"));
      }
    }
    report.windows_done = static_cast<int32_t>(wi + 1);
    report.running_ppl = acc.ppl();
    report.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(report);
  }

  EvalResult r;
  r.protocol = config.protocol;
  r.ctx = *ctx;
  r.n_tokens = static_cast<int64_t>(tokens.size());
  r.windows = static_cast<int32_t>(plan->windows.size());
  r.scored_tokens = acc.count();
  r.bos_per_window = stream->window_bos >= 0;
  r.nll = acc.mean_nll();
  r.ppl = acc.ppl();
  r.ppl_stderr = acc.ppl_stderr();
  r.has_reference = acc.has_reference();
  if (r.has_reference) {
    r.ref_nll = acc.ref_mean_nll();
    r.ref_ppl = acc.ref_ppl();
    r.kld_mean = acc.kld_mean();
    r.top1_agreement = acc.top1_agreement_percent();
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace fp4lm
