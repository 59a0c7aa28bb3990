// The GGUF container without any model semantics: a validating parser (header, metadata of
// every value type, tensor infos, alignment, data offset) and a builder that writes a file.
// The model reader/writer and the tests build on these; nothing here knows about llama.
#ifndef FP4LM_MODEL_GGUF_FILE_H_
#define FP4LM_MODEL_GGUF_FILE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/gguf_format.h"

namespace engine::model::gguf {

// An array value. Fixed-size elements stay packed little-endian in `raw` (a uint8 array of a
// 2 MB tokenizer file is 2 MB here, not a vector of variants); strings and nested arrays are
// unpacked.
struct GgufArray {
  ValueType elem_type = ValueType::kUint8;
  uint64_t size = 0;
  std::vector<uint8_t> raw;          // size * ValueTypeSize(elem_type) bytes
  std::vector<std::string> strings;  // elem_type == kString
  std::vector<GgufArray> arrays;     // elem_type == kArray

  // Element i of a numeric or bool array, widened. The caller checks i < size.
  int64_t IntAt(uint64_t i) const;   // integer and bool types (uint64 above INT64_MAX wraps)
  double FloatAt(uint64_t i) const;  // any numeric type
  bool IsInteger() const;            // elements are an integer type or bool
  bool IsNumeric() const;            // integer, bool or float
};

struct GgufValue {
  ValueType type = ValueType::kUint8;
  uint64_t u = 0;   // kUint8/16/32/64, kBool (0/1)
  int64_t i = 0;    // kInt8/16/32/64
  double f = 0.0;   // kFloat32/64
  std::string str;  // kString
  GgufArray array;  // kArray

  static GgufValue String(std::string s);
  static GgufValue Uint32(uint32_t v);
  static GgufValue Int32(int32_t v);
  static GgufValue Float32(float v);
  static GgufValue Bool(bool v);
  static GgufValue StringArray(std::vector<std::string> v);
  static GgufValue Float32Array(std::span<const float> v);
  static GgufValue Int32Array(std::span<const int32_t> v);
  static GgufValue Uint8Array(std::span<const uint8_t> v);
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // innermost-first, as stored (ne[0] is the row length)
  uint32_t type = 0;        // a type number known to TensorTypeInfo (ggml's or fp4lm's)
  uint64_t offset = 0;      // relative to GgufFile::data_offset
  int64_t n_elements = 0;
  uint64_t n_bytes = 0;

  const char* type_name() const { return TensorTypeInfo(type).name; }
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }  // outermost-first
};

// A parsed GGUF header. Tensor data is not copied: tensor t lives at
// bytes[data_offset + t.offset, + t.n_bytes), which the parser proved to be inside the file.
struct GgufFile {
  std::string path;
  uint32_t version = 0;
  uint32_t alignment = kDefaultAlignment;
  uint64_t data_offset = 0;  // absolute, aligned
  uint64_t file_size = 0;
  std::vector<GgufKv> kvs;
  std::vector<GgufTensorInfo> tensors;

  const GgufValue* Find(const std::string& key) const;
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  bool Has(const std::string& key) const { return Find(key) != nullptr; }

  // Typed metadata getters. NotFound names the missing key; InvalidArgument names the key, the
  // expected and the found type (or the out-of-range value).
  absl::StatusOr<std::string> GetString(const std::string& key) const;
  absl::StatusOr<int64_t> GetInt(const std::string& key) const;   // any integer type
  absl::StatusOr<double> GetFloat(const std::string& key) const;  // float or integer types
  absl::StatusOr<bool> GetBool(const std::string& key) const;
  absl::StatusOr<std::vector<std::string>> GetStringArray(const std::string& key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(const std::string& key) const;
  absl::StatusOr<std::vector<double>> GetFloatArray(const std::string& key) const;
  // The bytes of a uint8/int8 array, or of a string value.
  absl::StatusOr<std::string> GetBytes(const std::string& key) const;

  absl::flat_hash_map<std::string, size_t> kv_index;
  absl::flat_hash_map<std::string, size_t> tensor_index;
};

// Parses and validates everything but tensor contents: magic, version (2 and 3; 1 is
// Unimplemented), counts, every length against the bytes remaining, value types, ggml tensor
// types (unknown: Unimplemented naming the tensor and the type number), dims, alignment, and
// that every tensor's data lies inside `bytes`. `path` names the file in errors.
// fp4lm's FP4 tensor types (gguf_format.h) are accepted only when fp4lm.quantization is
// "w4a4"; a file whose fp4lm.format_version is newer than kFp4lmFormatVersionCurrent is
// Unimplemented (its tensor types may mean something this code does not know).
absl::StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> bytes, const std::string& path);

// The stored bytes of tensor `t` of a file parsed from `bytes`.
inline std::span<const uint8_t> TensorBytes(const GgufFile& file, const GgufTensorInfo& t,
                                            std::span<const uint8_t> bytes) {
  return bytes.subspan(file.data_offset + t.offset, t.n_bytes);
}

// Writes a GGUF v3 file: metadata in insertion order, then tensors in insertion order, each
// aligned. general.alignment is written when the alignment is not the default.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t alignment = kDefaultAlignment) : alignment_(alignment) {}

  void Add(std::string key, GgufValue value) { kvs_.push_back({std::move(key), std::move(value)}); }
  // `ne` innermost-first; `data` must hold exactly the tensor's bytes and stay alive until
  // Write/Serialize (AddTensorCopy keeps its own copy).
  absl::Status AddTensor(std::string name, std::vector<int64_t> ne, GgmlType type,
                         std::span<const uint8_t> data);
  absl::Status AddTensorCopy(std::string name, std::vector<int64_t> ne, GgmlType type,
                             std::vector<uint8_t> data);
  // The same by type number, for fp4lm's own types (gguf_format.h); Write refuses them unless
  // the metadata says fp4lm.quantization = "w4a4", as ParseGguf would.
  absl::Status AddTensor(std::string name, std::vector<int64_t> ne, uint32_t type,
                         std::span<const uint8_t> data);
  absl::Status AddTensorCopy(std::string name, std::vector<int64_t> ne, uint32_t type,
                             std::vector<uint8_t> data);

  // Streams the file to `sink`, which returns false on a write error.
  absl::Status Write(const std::function<bool(const void*, size_t)>& sink) const;
  absl::Status WriteFile(const std::string& path) const;
  std::string Serialize() const;

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> ne;
    uint32_t type;
    std::span<const uint8_t> data;
  };
  uint32_t alignment_;
  std::vector<GgufKv> kvs_;
  std::vector<Tensor> tensors_;
  std::deque<std::vector<uint8_t>> owned_;  // deque: stable element addresses
};

}  // namespace engine::model::gguf

#endif  // FP4LM_MODEL_GGUF_FILE_H_
