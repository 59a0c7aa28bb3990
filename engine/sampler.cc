// The next-token sampler (see sampler.h). Filters follow llama.cpp's common sampler chain so
// that the same options mean the same thing here and there.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "absl/strings/str_cat.h"
#include "kernels/core/status_macros.h"

namespace engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

absl::Status OutOfRange(const char* field, const char* expected, double got) {
  return absl::InvalidArgumentError(
      absl::StrCat("SamplingParams.", field, ": expected ", expected, ", got ", got));
}

// exp(logit - max) at temperature t, written so that the top token is exactly 1 even when
// max is +inf, and so that no NaN can come out (NaN logits were already mapped to -inf).
double Weight(float logit, float max, double t) {
  if (logit == max) return 1.0;
  const double z = (static_cast<double>(logit) - max) / t;
  return std::isnan(z) ? 0.0 : std::exp(z);
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return OutOfRange("temperature", "a finite value >= 0 (0 = greedy)", p.temperature);
  }
  if (p.top_k < 0) return OutOfRange("top_k", "an integer >= 0 (0 = off)", p.top_k);
  if (!(p.top_p >= 0.0f && p.top_p <= 1.0f)) {
    return OutOfRange("top_p", "a value in [0, 1] (1 = off)", p.top_p);
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    return OutOfRange("min_p", "a value in [0, 1] (0 = off)", p.min_p);
  }
  if (!(std::isfinite(p.repeat_penalty) && p.repeat_penalty > 0.0f)) {
    return OutOfRange("repeat_penalty", "a finite value > 0 (1 = off)", p.repeat_penalty);
  }
  if (p.repeat_last_n < -1) {
    return OutOfRange("repeat_last_n", "an integer >= -1 (-1 = whole history)", p.repeat_last_n);
  }
  if (p.max_new_tokens < 0) {
    return OutOfRange("max_new_tokens", "an integer >= 0", p.max_new_tokens);
  }
  return absl::OkStatus();
}

void Xoshiro256::Seed(uint64_t seed) {
  // splitmix64 never yields four zero words, the one state xoshiro must avoid.
  uint64_t sm = seed;
  for (uint64_t& word : s_) word = SplitMix64(sm);
}

uint64_t Xoshiro256::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

void Sampler::ApplyRepetitionPenalty(const SamplingParams& params,
                                     std::span<const TokenId> recent_tokens) {
  const float penalty = params.repeat_penalty;
  if (!(penalty > 0.0f) || penalty == 1.0f || !std::isfinite(penalty)) return;
  if (params.repeat_last_n == 0 || recent_tokens.empty()) return;
  size_t take = recent_tokens.size();
  if (params.repeat_last_n > 0) take = std::min(take, static_cast<size_t>(params.repeat_last_n));
  // Each distinct token is penalized once, however often it occurs (as llama.cpp does).
  window_.assign(recent_tokens.end() - static_cast<std::ptrdiff_t>(take), recent_tokens.end());
  std::sort(window_.begin(), window_.end());
  window_.erase(std::unique(window_.begin(), window_.end()), window_.end());
  for (const TokenId id : window_) {
    if (id < 0 || static_cast<size_t>(id) >= candidates_.size()) continue;
    float& logit = candidates_[static_cast<size_t>(id)].logit;
    logit = logit > 0.0f ? logit / penalty : logit * penalty;
  }
}

TokenId Sampler::Sample(std::span<const float> logits, const SamplingParams& params,
                        std::span<const TokenId> recent_tokens) {
  ENGINE_CHECK(!logits.empty());
  const size_t vocab = logits.size();
  candidates_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) {
    candidates_[i] = {std::isnan(logits[i]) ? kNegInf : logits[i], static_cast<TokenId>(i)};
  }
  ApplyRepetitionPenalty(params, recent_tokens);

  // The argmax is the answer when greedy, and the one token every filter below keeps.
  size_t best = 0;
  for (size_t i = 1; i < vocab; ++i) {
    if (candidates_[i].logit > candidates_[best].logit) best = i;
  }
  const float max_logit = candidates_[best].logit;
  if (!(params.temperature > 0.0f) || max_logit == kNegInf) return static_cast<TokenId>(best);

  // Descending logit, then ascending id: a total order, so any sort gives the same result.
  const auto before = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  size_t n = vocab;
  const bool use_top_k = params.top_k > 0 && static_cast<size_t>(params.top_k) < vocab;
  const bool use_top_p = params.top_p < 1.0f;  // false for NaN
  if (use_top_k) {
    // O(V + k log k): select the k best, then order only those.
    n = static_cast<size_t>(params.top_k);
    std::nth_element(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n),
                     candidates_.end(), before);
    std::sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n), before);
  } else if (use_top_p) {
    std::sort(candidates_.begin(), candidates_.end(), before);
  }
  const bool sorted = use_top_k || use_top_p;

  if (use_top_p) {
    // Probabilities at temperature 1 over the tokens top-k kept, as llama.cpp's top-p sees them.
    probs_.resize(n);
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      probs_[i] = Weight(candidates_[i].logit, max_logit, 1.0);
      sum += probs_[i];
    }
    const double target = static_cast<double>(params.top_p) * sum;
    double cumulative = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cumulative += probs_[i];
      if (cumulative >= target) {
        n = i + 1;
        break;
      }
    }
  }

  if (params.min_p > 0.0f && params.min_p <= 1.0f) {
    // p_i >= min_p * p_max  <=>  logit_i - max_logit >= log(min_p), whatever the normalization.
    const double threshold = std::log(static_cast<double>(params.min_p));
    const auto keep = [&](float logit) {
      return logit == max_logit || static_cast<double>(logit) - max_logit >= threshold;
    };
    if (sorted) {
      size_t kept = 1;  // the top token always stays
      while (kept < n && keep(candidates_[kept].logit)) ++kept;
      n = kept;
    } else {
      size_t kept = 0;
      for (size_t i = 0; i < n; ++i) {
        if (keep(candidates_[i].logit)) candidates_[kept++] = candidates_[i];
      }
      n = kept;
    }
  }

  probs_.resize(n);
  double sum = 0.0;
  const double temperature = params.temperature;
  for (size_t i = 0; i < n; ++i) {
    probs_[i] = Weight(candidates_[i].logit, max_logit, temperature);
    sum += probs_[i];
  }
  const double u = rng_.NextDouble() * sum;
  double cumulative = 0.0;
  TokenId last = candidates_[0].id;
  for (size_t i = 0; i < n; ++i) {
    if (probs_[i] <= 0.0) continue;
    cumulative += probs_[i];
    last = candidates_[i].id;
    if (u < cumulative) return last;
  }
  return last;  // u within rounding of sum: the last token with any mass
}

}  // namespace engine
