// Plain option aggregates of the public API, with defaults. Documented per field.
#ifndef FP4LM_ENGINE_INCLUDE_ENGINE_OPTIONS_H_
#define FP4LM_ENGINE_INCLUDE_ENGINE_OPTIONS_H_

#include <cstdint>
#include <string>

namespace engine {

struct ModelOptions {
  std::string path;            // llama2.c .bin, Hugging Face directory, or .gguf (detected by content)
  std::string tokenizer_path;  // optional: overrides the tokenizer found with the model
  int32_t num_threads = 0;     // CPU worker threads; 0 = all hardware threads
};

struct SessionOptions {
  int32_t max_seq_len = 0;  // KV-cache capacity in tokens; 0 = the model's context window
  // W4A4 models that store a full-precision attention sink (the BOS token's keys and values):
  // a sequence that does not start with that token gets it in front anyway, in an extra KV
  // slot that position() and capacity() do not count. Off = such sequences start bare, and
  // their first token's massive activations go through the static W4A4 scales.
  bool sink_prefix = true;
};

struct SamplingParams {
  float temperature = 0.8f;     // 0 = greedy argmax
  int32_t top_k = 40;           // keep the k most likely tokens; 0 = disabled
  float top_p = 0.95f;          // nucleus: smallest set with this cumulative mass; 1 = disabled
  float min_p = 0.05f;          // drop tokens below min_p * p(top token); 0 = disabled
  float repeat_penalty = 1.0f;  // >1 discourages tokens among the last repeat_last_n; 1 = off
  int32_t repeat_last_n = 64;   // window of the repetition penalty
  uint64_t seed = 0;            // same seed + same inputs = same tokens
  int32_t max_new_tokens = 256;
};

}  // namespace engine

#endif  // FP4LM_ENGINE_INCLUDE_ENGINE_OPTIONS_H_
