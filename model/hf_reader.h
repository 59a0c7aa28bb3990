// Reader for a Hugging Face model directory: config.json (LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM), model.safetensors or a sharded model.safetensors.index.json (F32, F16,
// BF16), and the tokenizer (tokenizer.json or tokenizer.model) with tokenizer_config.json's chat
// template.
#ifndef FP4LM_MODEL_HF_READER_H_
#define FP4LM_MODEL_HF_READER_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/loaded_model.h"
#include "model/json_util.h"

namespace engine::model {

// Parses a config.json document (exposed for tests of malformed configs).
absl::StatusOr<ModelConfig> ParseHfConfig(const Json& config, const std::string& source);

absl::StatusOr<LoadedModel> ReadHfModel(const std::string& directory);

}  // namespace engine::model

#endif  // FP4LM_MODEL_HF_READER_H_
