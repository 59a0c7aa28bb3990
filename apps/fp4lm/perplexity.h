// The math of `fp4lm eval`: negative log-likelihood and KL divergence over logit rows, the
// window plans of the two perplexity protocols, and the evaluation loop over engine Sessions.
// Kept apart from eval.cc (which only parses options and prints) so tests can check each piece.
#ifndef FP4LM_APPS_FP4LM_PERPLEXITY_H_
#define FP4LM_APPS_FP4LM_PERPLEXITY_H_

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"

namespace fp4lm {

// How the token stream is cut into windows and which tokens are scored.
enum class PplProtocol {
  // GPTQ / LLM-FP4 / QuaRot on WikiText-2: non-overlapping windows of ctx tokens, no BOS, the
  // last partial window dropped; every token but the first of a window is scored.
  kPapers,
  // llama.cpp's llama-perplexity: the stream starts with BOS (if the vocabulary adds one), each
  // window's first token is replaced by BOS, and only the second half of a window is scored.
  kLlamaCpp,
};

// "papers" / "llamacpp"; InvalidArgument naming both otherwise.
absl::StatusOr<PplProtocol> ParsePplProtocol(std::string_view name);
const char* PplProtocolName(PplProtocol protocol);

// log(sum_i exp(row[i])) in double, computed as max + log(sum exp(row[i] - max)) so that no
// exp overflows. NaN if the row is empty or its maximum is not finite.
double LogSumExp(std::span<const float> row);

// -log softmax(logits_row)[target]: the cross-entropy of the next token `target` under the
// distribution that `logits_row` defines. Precondition: 0 <= target < row size.
double NllOfNextToken(std::span<const float> logits_row, int target);

// KL(P_ref || P) = sum_i p_ref[i] * (log p_ref[i] - log p[i]) in nats, with both softmaxes in
// double. Exactly 0 for identical rows. Precondition: equal sizes.
double KlDivergence(std::span<const float> ref_row, std::span<const float> row);

// Index of the largest logit (the first one on ties); -1 for an empty row.
int ArgMax(std::span<const float> row);

// One window of the token stream. Row r of its logits predicts token r + 1 of the window, so
// the scored tokens [first_scored, length) use logit rows [first_scored - 1, length - 1).
struct Window {
  int64_t begin = 0;         // index of the window's first token in the stream
  int32_t length = 0;        // tokens fed (ctx)
  int32_t first_scored = 1;  // index in the window of the first scored token
  int32_t scored() const { return length - first_scored; }
};

struct WindowPlan {
  std::vector<Window> windows;
  int64_t scored_tokens() const;
};

// Windows of `ctx` tokens over a stream of `n_tokens`, both protocols non-overlapping with the
// last partial window dropped; `max_windows` > 0 keeps only the first that many (--chunks).
// InvalidArgument if ctx is too small for the protocol to score a token, or if the stream
// does not fill one window.
absl::StatusOr<WindowPlan> MakeWindows(int64_t n_tokens, int32_t ctx, PplProtocol protocol,
                                       int32_t max_windows = 0);

// Sums over scored positions: NLL of the model, and with a reference also the reference's NLL,
// KL(P_ref || P_model) and whether both put their maximum on the same token.
class EvalAccumulator {
 public:
  // One scored position: `row` predicts `target`. Returns the position's NLL.
  double Add(std::span<const float> row, int target);
  // The same with the reference's row for the same position; returns the position's KL.
  double Add(std::span<const float> row, std::span<const float> ref_row, int target);

  int64_t count() const { return count_; }
  bool has_reference() const { return ref_count_ > 0; }
  double mean_nll() const;  // NaN before the first Add
  double ppl() const { return std::exp(mean_nll()); }
  // Standard error of the PPL estimate (delta method, as llama-perplexity prints it).
  double ppl_stderr() const;
  double ref_mean_nll() const;
  double ref_ppl() const { return std::exp(ref_mean_nll()); }
  double kld_mean() const;
  double top1_agreement_percent() const;
  // False once any NLL or KL added was NaN or infinite (non-finite logits).
  bool all_finite() const;

 private:
  void AddNll(double nll);

  int64_t count_ = 0;
  double nll_sum_ = 0.0;
  double nll_running_mean_ = 0.0;  // Welford: sum - n * mean^2 cancels badly in double
  double nll_m2_ = 0.0;
  int64_t ref_count_ = 0;
  double ref_nll_sum_ = 0.0;
  double kld_sum_ = 0.0;
  int64_t same_top_ = 0;
};

struct EvalConfig {
  int32_t ctx = 0;  // window length; 0 = min(2048, the models' context windows)
  PplProtocol protocol = PplProtocol::kPapers;
  int32_t max_windows = 0;  // 0 = all
};

// Reported before the first window (windows_done == 0) and after each one.
struct EvalProgress {
  int64_t n_tokens = 0;  // length of the token stream
  int32_t ctx = 0;
  int32_t windows_done = 0;
  int32_t windows_total = 0;
  double running_ppl = 0.0;  // NaN before the first window
  double seconds = 0.0;      // since the first window started
};
using EvalProgressFn = std::function<void(const EvalProgress&)>;

struct EvalResult {
  PplProtocol protocol = PplProtocol::kPapers;
  int32_t ctx = 0;
  int64_t n_tokens = 0;  // length of the token stream
  int32_t windows = 0;
  int64_t scored_tokens = 0;
  bool bos_per_window = false;  // llamacpp protocol with a vocabulary that adds BOS
  double nll = 0.0;             // mean NLL per scored token (nats)
  double ppl = 0.0;
  double ppl_stderr = 0.0;
  bool has_reference = false;  // the fields below are meaningful only then
  double ref_nll = 0.0;
  double ref_ppl = 0.0;
  double kld_mean = 0.0;
  double top1_agreement = 0.0;  // percent
  double seconds = 0.0;         // the evaluation loop (not loading or tokenizing)
};

// Tokenizes `text` once (no BOS; llamacpp: BOS first as llama-perplexity does) and evaluates
// `model` over the windows of `config`, with one Session per model reused across windows.
// With `ref_model` (may be null) both run on every window; the reference must tokenize the
// text identically and have the same vocabulary size, else InvalidArgument.
absl::StatusOr<EvalResult> EvaluatePerplexity(const engine::Model& model,
                                              const engine::Model* ref_model,
                                              std::string_view text, const EvalConfig& config,
                                              const EvalProgressFn& progress = {});

}  // namespace fp4lm

#endif  // FP4LM_APPS_FP4LM_PERPLEXITY_H_
