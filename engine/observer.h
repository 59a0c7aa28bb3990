// A hook on the named activations of the forward pass: the analogue of llama.cpp's
// cb(cur, "attn_norm", il). The quantizer's calibration attaches one to an FP32 session to
// collect per-channel statistics at the inputs of every linear layer.
#ifndef FP4LM_ENGINE_OBSERVER_H_
#define FP4LM_ENGINE_OBSERVER_H_

#include <cstdint>
#include <string_view>

namespace engine {

// The observation points, each the input of a group of linear layers.
enum class ActivationPoint : uint8_t {
  kAttnInput,  // RMSNorm output feeding q/k/v        [m, model_dim]
  kAttnOutput, // attention output feeding o_proj      [m, n_heads * head_dim]
  kFfnInput,   // RMSNorm output feeding gate/up       [m, model_dim]
  kDownInput,  // SiLU(gate) * up feeding down_proj    [m, ffn_dim]
};

const char* ActivationPointName(ActivationPoint point);

class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // `data` is [rows, cols] row-major and valid only during the call.
  virtual void Observe(int32_t layer, ActivationPoint point, const float* data, int64_t rows,
                       int64_t cols) = 0;
};

}  // namespace engine

#endif  // FP4LM_ENGINE_OBSERVER_H_
