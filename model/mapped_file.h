// A read-only memory mapping of a whole file. Model weights are read in place where their
// format allows it (F32 safetensors/GGUF), so loading a large model costs no copy.
#ifndef FP4LM_MODEL_MAPPED_FILE_H_
#define FP4LM_MODEL_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"

namespace engine::model {

class MappedFile {
 public:
  // NotFound if the file does not exist; an empty file maps to an empty span.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

// Text and tokenizer files above this size are refused before they are read (the largest real
// ones, tokenizer.json files of big vocabularies, are tens of MiB).
inline constexpr uint64_t kMaxSmallFileBytes = uint64_t{256} << 20;

// Reads a whole (small) file into a string: config.json, tokenizer files. InvalidArgument for
// something that is not a regular file (a FIFO or device would never end) or is larger than
// `max_bytes`.
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             uint64_t max_bytes = kMaxSmallFileBytes);

}  // namespace engine::model

#endif  // FP4LM_MODEL_MAPPED_FILE_H_
