// The models `fp4lm bench` times: a named architecture shape with seeded random weights made in
// process (speed does not depend on the values, so nothing is downloaded), held in one of four
// linear types, or a model file as loaded. Timing runs the engine's own forward pass — the
// same code a Session runs — for llama-bench's two tests: prompt processing and generation.
#ifndef FP4LM_ENGINE_BENCH_MODEL_H_
#define FP4LM_ENGINE_BENCH_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend_weights.h"
#include "engine/engine.h"
#include "kernels/cpu/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"

namespace engine::bench {

// How the decoder's linears are held and multiplied. W4A4: FP4 weights and FP4 activations
// with static scales (and an int8-row head, as a quantized model file runs); W4A16: the same
// FP4 weights and head with FP32 activations; F16: F16 weights and head, FP32 compute
// (llama.cpp's F16); F32.
enum class LinearType { kF32, kF16, kW4A16, kW4A4 };
const char* LinearTypeName(LinearType type);  // "f32", "f16", "w4a16", "w4a4"
absl::StatusOr<LinearType> ParseLinearType(std::string_view name);

// Named shapes: "tinyllama-1.1b", "llama2-7b", "smollm2-135m" (their config.json values).
std::vector<std::string> ShapeNames();
absl::StatusOr<model::ModelConfig> ShapeConfig(std::string_view name);

// Bytes of physical memory, 0 where unknown. CreateRandom admits models up to 80% of it.
int64_t PhysicalMemoryBytes();

class BenchModel {
 public:
  // Random weights for `config` in `type` (seeded; norms 1, embedding and head FP32 except the
  // F16 head of F16 and the int8-row head of W4A16/W4A4). ResourceExhausted, before
  // allocating, when they would not fit in the machine's memory.
  static absl::StatusOr<std::unique_ptr<BenchModel>> CreateRandom(const model::ModelConfig& config,
                                                                   LinearType type, uint64_t seed);
  // The weights of a loaded model file (not copied: `model` must outlive the BenchModel).
  static absl::StatusOr<std::unique_ptr<BenchModel>> FromModel(const Model& model);
  ~BenchModel();

  const model::ModelConfig& config() const { return *config_; }
  LinearType type() const { return type_; }
  // Bytes of all weights held (what llama-bench calls the model size).
  int64_t weight_bytes() const;
  // Bytes one decode step reads from memory at KV length `context`: every linear and the head
  // once, one embedding row, and the keys and values of `context` positions.
  int64_t DecodeBytesPerToken(int32_t context) const;
  // Multiply-adds of the decoder's linears for one token: what a prompt token costs besides
  // attention (a prompt computes the head once, at its last position, so it is not counted).
  int64_t LinearMacsPerToken() const;

  // Seconds to run `n` prompt tokens (random ids) from an empty cache, in chunks as a Session
  // prefills, the last position's logits computed.
  absl::StatusOr<double> TimePrompt(int32_t n, kernels::ThreadPool& pool);
  // Seconds to generate `n` tokens one at a time from an empty cache (logits every step).
  absl::StatusOr<double> TimeGenerate(int32_t n, kernels::ThreadPool& pool);

 private:
  struct Storage;
  BenchModel();
  absl::StatusOr<double> Run(int32_t n, int32_t per_call, kernels::ThreadPool& pool);

  LinearType type_ = LinearType::kF32;
  const model::ModelConfig* config_ = nullptr;
  const model::ModelWeights* weights_ = nullptr;
  const BackendWeights* backend_ = nullptr;
  std::unique_ptr<Storage> owned_;  // random models own their weights
  uint64_t token_seed_ = 1;
};

}  // namespace engine::bench

#endif  // FP4LM_ENGINE_BENCH_MODEL_H_
