// The W4A4 half of a model: FP4 linear layers with static activation quantization, as the
// quantizer produces them, our GGUF files store them, and the engine runs them.
//
// A W4A4 linear computes
//   y[m, n] = a_scale * row_scale[n] * sum_k dec_A(a[m, k]) * dec_W(w[n, k])   (+ bias[n])
// where a[m, k] = Encode_A(x[m, k] / a_scale) is the activation quantized with one static,
// per-tensor scale (calibrated once, never computed per token), and dec_A / dec_W decode codes
// of the activation's and the weight's FP4 format (kernels/core/fp4_format.h; LLM-FP4 searches
// the format per layer). Per-input-channel activation factors are not stored anywhere: the
// quantizer folded them into the producer (RMSNorm gamma, v_proj / up_proj rows) and into the
// weight columns before quantizing (LLM-FP4's pre-shifted exponent bias, MergeQuant's step
// migration).
//
// Canonical layout (the file format; backends repack at load):
//   codes:     [out_features, in_features / 2] bytes; element (n, k) is in byte
//              codes[n][k / 2], LOW nibble when k is even (kernels/core/fp4.h).
//   row_scale: [out_features] float.
//   in_features is even.
#ifndef FP4LM_MODEL_FP4_WEIGHTS_H_
#define FP4LM_MODEL_FP4_WEIGHTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/config.h"

namespace engine::model {

// The 4-bit formats LLM-FP4 searches over (1 sign bit + exponent/mantissa split). Their value
// tables and codecs are in kernels/core/fp4_format.h.
enum class Fp4Format : uint8_t { kE2M1 = 0, kE3M0 = 1, kE1M2 = 2 };
const char* Fp4FormatName(Fp4Format format);  // "e2m1", "e3m0", "e1m2"

// Static quantization of one activation tensor (the shared input of one or more linears).
struct ActQuant {
  Fp4Format format = Fp4Format::kE2M1;
  float scale = 1.0f;  // x ~= scale * dec(code); codes saturate at the format's max magnitude
};

// One FP4 weight matrix in the canonical layout. The views point into storage owned by
// ModelWeights (or a mapping of the model file).
struct Fp4Linear {
  Fp4Format format = Fp4Format::kE2M1;
  int64_t out_features = 0;
  int64_t in_features = 0;
  const uint8_t* codes = nullptr;      // [out_features, in_features / 2]
  const float* row_scale = nullptr;    // [out_features]
  const float* bias = nullptr;         // [out_features] or null (Qwen2 q/k/v)

  bool empty() const { return codes == nullptr; }
  int64_t code_bytes() const { return out_features * (in_features / 2); }
};

// The quantized linears of one decoder layer and the static quantization of their inputs.
// Inputs are shared: q/k/v read one quantized tensor, gate/up another.
struct Fp4LayerWeights {
  ActQuant attn_input;  // RMSNorm(x) -> q, k, v
  ActQuant attn_output; // attention output -> o
  ActQuant ffn_input;   // RMSNorm(x) -> gate, up
  ActQuant down_input;  // SiLU(gate) * up -> down
  Fp4Linear wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Everything about a W4A4 model beyond its FP32 parts (embedding, norms, head stay FP32 in
// ModelWeights; the norms already carry the folded per-channel factors).
// The attention-sink strategy (IntactKV-style): tokens at position 0 act as attention sinks
// with massive activations that a static per-tensor scale cannot represent. The quantizer runs
// the sink token (BOS) through the full-precision model once and stores its keys and values
// per layer, and the next-token logits after it; a session whose sequence starts with that
// token takes them from here instead of running position 0 in W4A4.
struct Fp4Sink {
  int32_t token = -1;            // -1: no sink prefix stored
  const float* keys = nullptr;   // [n_layers, n_kv_heads * head_dim], after RoPE at position 0
  const float* values = nullptr; // [n_layers, n_kv_heads * head_dim]
  const float* logits = nullptr; // [vocab_size]

  bool empty() const { return token < 0; }
};

struct Fp4ModelWeights {
  std::vector<Fp4LayerWeights> layers;
  Fp4Sink sink;
  // Provenance, stored in the file: method ("rtn", "llm-fp4", "mergequant"), calibration data,
  // fp4lm version, per-layer search results. Free-form key/value strings.
  std::vector<std::pair<std::string, std::string>> metadata;

  bool empty() const { return layers.empty(); }
  // Checks every linear against the config's shapes. `source` names the file in errors.
  absl::Status Validate(const ModelConfig& config, const std::string& source) const;
};

}  // namespace engine::model

#endif  // FP4LM_MODEL_FP4_WEIGHTS_H_
