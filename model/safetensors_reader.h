// Reader for the safetensors container: an 8-byte little-endian header length N, a JSON header
// of N bytes ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}), then
// the tensor bytes. Every offset is validated against the real file before use.
#ifndef FP4LM_MODEL_SAFETENSORS_READER_H_
#define FP4LM_MODEL_SAFETENSORS_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/mapped_file.h"

namespace engine::model {

// Safetensors headers above this size are rejected before parsing (real ones are < 1 MiB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

struct SafetensorsTensor {
  std::string dtype;              // "F32", "F16", "BF16", ...
  std::vector<int64_t> shape;     // outermost-first
  std::span<const uint8_t> data;  // inside the mapping of `file`
};

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::map<std::string, SafetensorsTensor>& tensors() const { return tensors_; }
  // "__metadata__" string entries (e.g. tinystories-656K's tied-weight alias
  // "model.embed_tokens.weight" -> "lm_head.weight").
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::shared_ptr<const MappedFile> mapping() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype name, or 0 if unknown.
int64_t SafetensorsDtypeSize(const std::string& dtype);

}  // namespace engine::model

#endif  // FP4LM_MODEL_SAFETENSORS_READER_H_
