// QuantizeModel: turns a full-precision model into a W4A4 model, with the calibration pass
// inside fp4lm. Layer by layer in network order, with earlier layers already quantized (the
// calibration activations flow through the quantized model, as in GPTQ and LLM-FP4), it
//   1. measures per-channel statistics at the inputs of q/k/v, o, gate/up and down,
//   2. chooses per-channel factors and folds them into the producer and the weights
//      (quantizer/scale_folding.h),
//   3. searches each weight's FP4 format and per-row clipping, and each input's static
//      activation format and clipping (quantizer/format_search.h).
// Embeddings, norms, the output head, attention (QK^T, softmax, PV) and the KV cache stay in
// FP32.
#ifndef FP4LM_QUANTIZER_QUANTIZE_MODEL_H_
#define FP4LM_QUANTIZER_QUANTIZE_MODEL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "model/loaded_model.h"
#include "quantizer/calibration.h"

namespace engine::quantizer {

enum class Method : uint8_t {
  kRtn,         // round-to-nearest min-max baseline: no folding, no search, E2M1, no sink
  kLlmFp4,      // power-of-two per-channel factors (pre-shifted exponent bias) + format search
  kMergeQuant,  // quantization-step migration (arbitrary factors) + adaptive clipping search
};
const char* MethodName(Method method);  // "rtn", "llm-fp4", "mergequant"

struct QuantizeOptions {
  Method method = Method::kLlmFp4;
  bool e2m1_only = false;  // restrict every format to E2M1 (what FP4 hardware runs)
  bool sink = true;        // keep the BOS attention sink in full precision (not with rtn)
  bool gptq = true;        // GPTQ error compensation when rounding weights (not with rtn)
  // Rotate each attention head's values by a Hadamard matrix (v_proj rows, o_proj columns): an
  // exact, offline change of basis that spreads outlier channels of o_proj's input across the
  // head before it is quantized (QuaRot's per-head V/O rotation). Needs a power-of-two head_dim.
  bool rotate_values = true;
  float migration_alpha = 0.5f;  // MergeQuant: activation/weight balance of the step migration
  int32_t search_rows = 512;     // calibration rows the activation search evaluates
  int32_t num_threads = 0;       // 0 = all hardware threads
  CalibrationOptions calibration;
  // Called after each layer (and with layer = -1 while calibration text is generated).
  std::function<void(std::string_view stage, int32_t done, int32_t total)> progress;
};

// What the search chose for one linear input and its consumers.
struct GroupReport {
  int32_t layer = 0;
  std::string input;                 // "attn_input", "attn_output", "ffn_input", "down_input"
  std::string act_format;            // "e2m1", ...
  float act_clip_ratio = 1.0f;
  double act_relative_error = 0.0;   // output error of the group with quantized activations
  std::vector<std::string> weights;  // "wq e2m1 clip 0.93 err 1.2e-3", ...
};

struct QuantizeReport {
  std::string calibration;
  std::vector<GroupReport> groups;
  double calibration_seconds = 0.0;
  double quantize_seconds = 0.0;
};

// The result shares the FP32 embedding, head and final norm of `fp_model` (keep it alive while
// using or writing the result); everything else is owned by the result.
absl::StatusOr<model::LoadedModel> QuantizeModel(const Model& fp_model,
                                                 const QuantizeOptions& options,
                                                 QuantizeReport* report = nullptr);

// Writes a quantized model as one self-contained GGUF file (model/gguf_writer.h).
absl::Status SaveQuantizedModel(const model::LoadedModel& quantized, const std::string& path);

}  // namespace engine::quantizer

#endif  // FP4LM_QUANTIZER_QUANTIZE_MODEL_H_
