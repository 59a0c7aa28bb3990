// Fuzz target: a llama2.c checkpoint (no magic number: a 28-byte header whose implied size must
// equal the file's). The bytes are written to a file, because the reader maps its input, and
// opened both through format detection and through the llama2.c reader directly.
#include "model/llama2c_reader.h"
#include "model/model_loader.h"
#include "tests/fuzz/fuzz_targets.h"

namespace engine::fuzz {

absl::Status FuzzLlama2c(FuzzInput data) {
  const std::string path = WriteFuzzFile("llama2c/model.bin", AsText(data));
  absl::StatusOr<model::LoadedModel> direct = model::ReadLlama2cModel(path);
  if (direct.ok()) (void)TouchWeights(*direct);
  absl::StatusOr<model::LoadedModel> detected = model::LoadModelFile(path);
  if (detected.ok()) (void)TouchWeights(*detected);
  return detected.status();
}

}  // namespace engine::fuzz
