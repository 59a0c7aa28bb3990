// Calibration data for the embedded calibration pass: token sequences the quantizer runs
// through the model to measure activation ranges. By default the model writes them itself
// (seeded sampling from BOS and a few generic openings), so quantizing needs nothing but the
// model; or they are cut from a text file the user gives. Never an evaluation set.
#ifndef FP4LM_QUANTIZER_CALIBRATION_H_
#define FP4LM_QUANTIZER_CALIBRATION_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"

namespace engine::quantizer {

struct CalibrationOptions {
  // Defaults: 16 sequences of 256 tokens (4096 tokens). LLM-FP4 used 32 x 1024 offline on
  // 7B-65B models; per-channel ranges and per-tensor clipping of a layer are estimated from
  // thousands of token vectors, which 4096 already gives, while self-generation costs a decode
  // step per token (~2.5 minutes for SmolLM2-135M in FP32 on 2 cores). Both are options.
  int32_t samples = 16;
  int32_t length = 256;          // tokens per sequence, BOS included
  uint64_t seed = 0;
  std::string file;              // text file to cut sequences from; empty = self-generated
  float temperature = 0.9f;      // self-generation sampling
  std::function<void(int32_t done, int32_t total)> progress;  // optional, tokens
};

struct CalibrationData {
  std::vector<std::vector<TokenId>> sequences;  // each of `length` tokens, starting with BOS
  std::string description;  // for the file's metadata: "self-generated, 16 x 256, seed 0"
};

// Every sequence starts with the vocabulary's BOS token (the attention sink the quantizer may
// keep in full precision); a model without BOS is refused.
absl::StatusOr<CalibrationData> MakeCalibrationData(const Model& model,
                                                    const CalibrationOptions& options);

}  // namespace engine::quantizer

#endif  // FP4LM_QUANTIZER_CALIBRATION_H_
