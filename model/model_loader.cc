#include "model/model_loader.h"

#include <sys/stat.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/core/status_macros.h"
#include "model/gguf_reader.h"
#include "model/hf_reader.h"
#include "model/llama2c_reader.h"
#include "model/mapped_file.h"

namespace engine::model {

const char* ModelFormatName(ModelFormat format) {
  switch (format) {
    case ModelFormat::kLlama2c:
      return "llama2.c";
    case ModelFormat::kHuggingFace:
      return "huggingface";
    case ModelFormat::kGguf:
      return "gguf";
  }
  return "unknown";
}

absl::StatusOr<LoadedModel> LoadModelFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file or directory"));
  }
  if (S_ISDIR(st.st_mode)) return ReadHfModel(path);
  std::string head;
  {
    ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path));
    if (file->size() >= 4 && std::memcmp(file->data(), "GGUF", 4) == 0) {
      file.reset();
      return ReadGgufModel(path);
    }
    if (LooksLikeLlama2c(file->bytes())) {
      file.reset();
      return ReadLlama2cModel(path);
    }
    for (size_t i = 0; i < std::min<size_t>(file->size(), 8); ++i) {
      absl::StrAppendFormat(&head, "%02x", file->data()[i]);
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, ": unrecognised model format (first bytes 0x", head,
      "): expected a GGUF file, a llama2.c checkpoint whose header matches its size, or a "
      "Hugging Face model directory"));
}

}  // namespace engine::model
