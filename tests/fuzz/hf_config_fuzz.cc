// Fuzz target: a Hugging Face config.json, parsed without exceptions and turned into a
// ModelConfig (architecture, dimensions, optional fields of the wrong type, rope_scaling).
#include "model/hf_reader.h"
#include "model/json_util.h"
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {

absl::Status FuzzHfConfig(FuzzInput data) {
  absl::StatusOr<model::Json> json = model::ParseJson(AsText(data), "fuzz/config.json");
  if (!json.ok()) return json.status();
  return model::ParseHfConfig(*json, "fuzz/config.json").status();
}

}  // namespace engine::fuzz
