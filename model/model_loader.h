// Opens a model of any supported format, detected from the content (not the file name):
// a directory is a Hugging Face model, a file starting with "GGUF" is GGUF, and a file whose
// 28-byte header implies exactly its size is a llama2.c checkpoint.
#ifndef FP4LM_MODEL_MODEL_LOADER_H_
#define FP4LM_MODEL_MODEL_LOADER_H_

#include <string>

#include "absl/status/statusor.h"
#include "model/loaded_model.h"

namespace engine::model {

absl::StatusOr<LoadedModel> LoadModelFile(const std::string& path);

}  // namespace engine::model

#endif  // FP4LM_MODEL_MODEL_LOADER_H_
