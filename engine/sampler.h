// The next-token sampler of a Session: repetition penalty, then greedy or
// top-k -> top-p -> min-p -> temperature -> seeded draw (llama.cpp's common sampler chain).
// Its PRNG is ours (xoshiro256**), so the same seed gives the same tokens on every platform.
#ifndef FP4LM_ENGINE_SAMPLER_H_
#define FP4LM_ENGINE_SAMPLER_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "engine/engine.h"
#include "engine/options.h"

namespace engine {

// InvalidArgument naming the field if `params` is out of its documented range: temperature
// finite and >= 0, top_k >= 0, top_p and min_p in [0, 1], repeat_penalty finite and > 0,
// repeat_last_n >= -1, max_new_tokens >= 0. Sample() itself never fails: it treats values
// outside these ranges as "filter disabled" (or greedy for a non-positive/NaN temperature), so
// callers validate once per request, not once per token.
absl::Status ValidateSamplingParams(const SamplingParams& params);

// xoshiro256** seeded through splitmix64 (Blackman & Vigna). Fully specified integer
// arithmetic, unlike std::uniform_real_distribution, whose output differs between libraries.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) { Seed(seed); }
  void Seed(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1) with 53 random bits.
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  std::array<uint64_t, 4> s_{};
};

// Not thread-safe; one per Session. Holds its scratch buffer so that Sample() does not allocate
// once the buffer has grown to the vocabulary size.
class Sampler {
 public:
  explicit Sampler(uint64_t seed) : rng_(seed) {}

  // Restarts the random sequence, as if newly constructed with `seed`.
  void Reseed(uint64_t seed) { rng_.Seed(seed); }

  // Picks the next token from `logits` (one per vocabulary id; must not be empty).
  // `recent_tokens` is the history, oldest first; the last params.repeat_last_n of it (all of it
  // when repeat_last_n is -1, none when 0) are penalized once each, CTRL style: a positive logit
  // is divided by repeat_penalty, a negative one multiplied. Ids outside the vocabulary in the
  // history are ignored.
  //
  // temperature <= 0 (or NaN): argmax, ties to the lowest id; no random number is drawn.
  // Otherwise, as llama.cpp: top_k (0 = off), top_p (nucleus over the probabilities at
  // temperature 1 of the tokens top_k kept: the smallest prefix, by descending probability, whose
  // mass is >= top_p; >= 1 = off), min_p (keep p >= min_p * p_max; 0 = off), then softmax at
  // `temperature` and one draw. Ties in ranking go to the lower id, so the result does not
  // depend on the sort implementation.
  //
  // NaN logits are treated as -inf (never chosen while any other token is possible). If every
  // logit is -inf or NaN, the result is token 0, as greedy's tie rule gives.
  TokenId Sample(std::span<const float> logits, const SamplingParams& params,
                 std::span<const TokenId> recent_tokens);

 private:
  struct Candidate {
    float logit;
    TokenId id;
  };

  void ApplyRepetitionPenalty(const SamplingParams& params, std::span<const TokenId> recent_tokens);

  Xoshiro256 rng_;
  std::vector<Candidate> candidates_;  // indexed by id until the first sort
  std::vector<TokenId> window_;        // distinct ids of the penalty window
  std::vector<double> probs_;          // unnormalized, parallel to the kept candidates
};

}  // namespace engine

#endif  // FP4LM_ENGINE_SAMPLER_H_
