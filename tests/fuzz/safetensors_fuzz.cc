// Fuzz target: model.safetensors (8-byte header length, JSON header with dtypes, shapes and
// data_offsets, tensor bytes) in a Hugging Face directory whose config.json is fixed and tiny,
// so that a well-formed input also goes through tensor lookup, shape checks and F16/BF16
// conversion. The container alone is opened first.
#include <fstream>

#include "model/hf_reader.h"
#include "model/safetensors_reader.h"
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {

// The seeds in corpus/safetensors/ are written for exactly this config (make_fuzz_seeds.cc).
extern const char kSafetensorsFuzzConfig[];
const char kSafetensorsFuzzConfig[] =
    R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
        "vocab_size": 16, "max_position_embeddings": 32, "rms_norm_eps": 1e-6,
        "tie_word_embeddings": false})";

absl::Status FuzzSafetensors(FuzzInput data) {
  static const bool config_written = [] {
    WriteFuzzFile("hf/config.json", kSafetensorsFuzzConfig);
    return true;
  }();
  (void)config_written;
  const std::string path = WriteFuzzFile("hf/model.safetensors", AsText(data));
  absl::StatusOr<std::unique_ptr<model::SafetensorsFile>> file = model::SafetensorsFile::Open(path);
  if (!file.ok()) return file.status();
  uint64_t sum = 0;
  for (const auto& [name, tensor] : (*file)->tensors()) {
    for (const uint8_t b : tensor.data) sum += b;  // every view must lie inside the mapping
  }
  (void)sum;
  absl::StatusOr<model::LoadedModel> m = model::ReadHfModel(FuzzTempDir() + "/hf");
  if (!m.ok()) return m.status();
  (void)TouchWeights(*m);
  return absl::OkStatus();
}

}  // namespace engine::fuzz
