// GGUF container parse and write. Every length read from the file is checked against the bytes
// remaining before anything is allocated or read, so a truncated or hostile file is an error
// naming the file and the field, never a crash.
#include "model/gguf_file.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/core/status_macros.h"

namespace engine::model::gguf {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian; the parser reads it in place");

namespace {

// A read position in the file's bytes that refuses to move past the end.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  size_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }
  const std::string& path() const { return path_; }

  absl::Status Need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": truncated GGUF file: ", what,
                                                     " at offset ", pos_, " needs ", n,
                                                     " bytes, only ", remaining(), " remain"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::StatusOr<T> Read(const std::string& what) {
    ENGINE_RETURN_IF_ERROR(Need(sizeof(T), what));
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }

  absl::Status ReadBytes(uint64_t n, const std::string& what, void* out) {
    ENGINE_RETURN_IF_ERROR(Need(n, what));
    if (n > 0) std::memcpy(out, bytes_.data() + pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const std::string& what) {
    ENGINE_ASSIGN_OR_RETURN(const uint64_t length, Read<uint64_t>(what + " (string length)"));
    if (length > kMaxStringBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what, ": string length ", length,
                                                     " at offset ", pos_ - 8,
                                                     " exceeds the limit of ", kMaxStringBytes,
                                                     " bytes"));
    }
    if (length > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what, ": string length ", length,
                                                     " at offset ", pos_ - 8, " exceeds the ",
                                                     remaining(), " bytes remaining in the file"));
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& path_;
  size_t pos_ = 0;
};

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

absl::StatusOr<ValueType> ReadValueType(Cursor& c, const std::string& what) {
  ENGINE_ASSIGN_OR_RETURN(const uint32_t t, c.Read<uint32_t>(what + " (value type)"));
  if (!IsKnownValueType(t)) {
    return Invalid(c.path(),
                   absl::StrCat(what, ": unknown metadata value type ", t, " (expected 0..12)"));
  }
  return static_cast<ValueType>(t);
}

absl::Status ReadArray(Cursor& c, const std::string& what, uint32_t depth, GgufArray* out);

absl::Status ReadScalar(Cursor& c, ValueType type, const std::string& what, GgufValue* out) {
  out->type = type;
  switch (type) {
    case ValueType::kUint8: {
      ENGINE_ASSIGN_OR_RETURN(out->u, c.Read<uint8_t>(what));
      break;
    }
    case ValueType::kUint16: {
      ENGINE_ASSIGN_OR_RETURN(out->u, c.Read<uint16_t>(what));
      break;
    }
    case ValueType::kUint32: {
      ENGINE_ASSIGN_OR_RETURN(out->u, c.Read<uint32_t>(what));
      break;
    }
    case ValueType::kUint64: {
      ENGINE_ASSIGN_OR_RETURN(out->u, c.Read<uint64_t>(what));
      break;
    }
    case ValueType::kBool: {
      ENGINE_ASSIGN_OR_RETURN(const uint8_t b, c.Read<uint8_t>(what));
      out->u = b != 0 ? 1 : 0;
      break;
    }
    case ValueType::kInt8: {
      ENGINE_ASSIGN_OR_RETURN(out->i, c.Read<int8_t>(what));
      break;
    }
    case ValueType::kInt16: {
      ENGINE_ASSIGN_OR_RETURN(out->i, c.Read<int16_t>(what));
      break;
    }
    case ValueType::kInt32: {
      ENGINE_ASSIGN_OR_RETURN(out->i, c.Read<int32_t>(what));
      break;
    }
    case ValueType::kInt64: {
      ENGINE_ASSIGN_OR_RETURN(out->i, c.Read<int64_t>(what));
      break;
    }
    case ValueType::kFloat32: {
      ENGINE_ASSIGN_OR_RETURN(out->f, c.Read<float>(what));
      break;
    }
    case ValueType::kFloat64: {
      ENGINE_ASSIGN_OR_RETURN(out->f, c.Read<double>(what));
      break;
    }
    case ValueType::kString: {
      ENGINE_ASSIGN_OR_RETURN(out->str, c.String(what));
      break;
    }
    case ValueType::kArray:
      return ReadArray(c, what, 0, &out->array);
  }
  return absl::OkStatus();
}

absl::Status ReadArray(Cursor& c, const std::string& what, uint32_t depth, GgufArray* out) {
  if (depth >= kMaxArrayNesting) {
    return Invalid(c.path(),
                   absl::StrCat(what, ": arrays nested deeper than ", kMaxArrayNesting, " levels"));
  }
  ENGINE_ASSIGN_OR_RETURN(out->elem_type, ReadValueType(c, what + " (array element type)"));
  ENGINE_ASSIGN_OR_RETURN(out->size, c.Read<uint64_t>(what + " (array length)"));
  const uint64_t min_size = MinEncodedSize(out->elem_type);
  if (out->size > kMaxArrayElements) {
    return Invalid(c.path(), absl::StrCat(what, ": array of ", out->size, " elements at offset ",
                                          c.pos(), " exceeds the limit of ", kMaxArrayElements));
  }
  if (out->size > c.remaining() / min_size) {
    return Invalid(c.path(),
                   absl::StrCat(what, ": array of ", out->size, " ", ValueTypeName(out->elem_type),
                                " elements at offset ", c.pos(), " needs at least ", min_size,
                                " bytes each, only ", c.remaining(), " bytes remain in the file"));
  }
  switch (out->elem_type) {
    case ValueType::kString:
      out->strings.reserve(out->size);
      for (uint64_t i = 0; i < out->size; ++i) {
        ENGINE_ASSIGN_OR_RETURN(std::string s, c.String(absl::StrCat(what, " element ", i)));
        out->strings.push_back(std::move(s));
      }
      break;
    case ValueType::kArray:
      out->arrays.resize(out->size);
      for (uint64_t i = 0; i < out->size; ++i) {
        ENGINE_RETURN_IF_ERROR(
            ReadArray(c, absl::StrCat(what, " element ", i), depth + 1, &out->arrays[i]));
      }
      break;
    default:
      out->raw.resize(out->size * min_size);
      ENGINE_RETURN_IF_ERROR(c.ReadBytes(out->raw.size(), what + " (array data)", out->raw.data()));
      break;
  }
  return absl::OkStatus();
}

bool IsIntegerType(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kBool:
      return true;
    default:
      return false;
  }
}

bool IsUnsigned(ValueType t) {
  return t == ValueType::kUint8 || t == ValueType::kUint16 || t == ValueType::kUint32 ||
         t == ValueType::kUint64 || t == ValueType::kBool;
}

uint64_t AlignUp(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

absl::Status ParseAlignment(const GgufFile& file, uint32_t* alignment) {
  const GgufValue* v = file.Find(kAlignmentKey);
  if (v == nullptr) return absl::OkStatus();
  if (!IsIntegerType(v->type) || v->type == ValueType::kBool) {
    return Invalid(file.path, absl::StrCat("key '", kAlignmentKey, "': expected uint32, found ",
                                           ValueTypeName(v->type)));
  }
  const int64_t a =
      IsUnsigned(v->type) ? static_cast<int64_t>(std::min<uint64_t>(v->u, 1u << 31)) : v->i;
  if (a <= 0 || a > kMaxAlignment || (a & (a - 1)) != 0) {
    return Invalid(file.path,
                   absl::StrCat("key '", kAlignmentKey, "': expected a power of two in [1, ",
                                kMaxAlignment, "], found ", a));
  }
  *alignment = static_cast<uint32_t>(a);
  return absl::OkStatus();
}

// Whether fp4lm's FP4 tensor types are legal in `file`: only in a W4A4 file, and only up to the
// fp4lm format version this code knows. `hint` explains a refusal in the unknown-type error.
absl::StatusOr<bool> AcceptsFp4lmTypes(const GgufFile& file, std::string* hint) {
  if (file.Has(keys::kFp4lmFormatVersion)) {
    const absl::StatusOr<int64_t> version = file.GetInt(keys::kFp4lmFormatVersion);
    if (version.ok() && *version > static_cast<int64_t>(kFp4lmFormatVersionCurrent)) {
      return absl::UnimplementedError(
          absl::StrCat(file.path, ": key '", keys::kFp4lmFormatVersion, "': fp4lm format version ",
                       *version, " is newer than this reader supports (",
                       kFp4lmFormatVersionCurrent, "); use a newer fp4lm"));
    }
  }
  const GgufValue* q = file.Find(keys::kFp4lmQuantization);
  if (q != nullptr && q->type == ValueType::kString && q->str == keys::kFp4lmW4A4) return true;
  *hint = absl::StrCat("; fp4lm's FP4 types are valid only in files with ",
                       keys::kFp4lmQuantization, " = \"", keys::kFp4lmW4A4, "\", found ",
                       q == nullptr                    ? std::string("no such key")
                       : q->type == ValueType::kString ? absl::StrCat("\"", q->str, "\"")
                                                       : ValueTypeName(q->type));
  return false;
}

absl::Status ReadTensorInfo(Cursor& c, size_t index, bool fp4lm_types,
                            const std::string& fp4lm_hint, GgufTensorInfo* t) {
  const std::string where = absl::StrCat("tensor info #", index);
  ENGINE_ASSIGN_OR_RETURN(t->name, c.String(where + " name"));
  const std::string what = absl::StrCat("tensor '", t->name, "'");
  ENGINE_ASSIGN_OR_RETURN(const uint32_t n_dims, c.Read<uint32_t>(what + " n_dims"));
  if (n_dims > kMaxDims) {
    return Invalid(c.path(), absl::StrCat(what, ": expected at most ", kMaxDims,
                                          " dimensions, found ", n_dims));
  }
  int64_t n_elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    ENGINE_ASSIGN_OR_RETURN(const uint64_t ne,
                            c.Read<uint64_t>(absl::StrCat(what, " ne[", d, "]")));
    if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Invalid(c.path(),
                     absl::StrCat(what, ": dimension ne[", d, "] must be positive, found ", ne));
    }
    const int64_t n = static_cast<int64_t>(ne);
    if (n_elements > std::numeric_limits<int64_t>::max() / n) {
      return Invalid(c.path(),
                     absl::StrCat(what, ": element count overflows int64 at ne[", d, "] = ", ne));
    }
    n_elements *= n;
    t->ne.push_back(n);
  }
  t->n_elements = n_elements;
  ENGINE_ASSIGN_OR_RETURN(t->type, c.Read<uint32_t>(what + " type"));
  const GgmlTypeTraits traits = fp4lm_types ? TensorTypeInfo(t->type) : GgmlTypeInfo(t->type);
  if (traits.name == nullptr) {
    return absl::UnimplementedError(absl::StrCat(c.path(), ": ", what,
                                                 ": unknown ggml tensor type ", t->type,
                                                 IsFp4lmType(t->type) ? fp4lm_hint : ""));
  }
  const int64_t row = t->ne.empty() ? 1 : t->ne[0];
  if (row % traits.block_size != 0) {
    return Invalid(
        c.path(),
        absl::StrCat(
            what, ": row length ne[0] = ", row, " is not a multiple of the ", traits.name,
            " block size ", traits.block_size,
            IsFp4lmType(t->type) ? " (two 4-bit codes per byte: in_features must be even)" : ""));
  }
  const int64_t blocks = n_elements / traits.block_size;
  if (blocks > std::numeric_limits<int64_t>::max() / traits.type_size) {
    return Invalid(c.path(), absl::StrCat(what, ": byte size overflows int64"));
  }
  t->n_bytes = static_cast<uint64_t>(blocks * traits.type_size);
  ENGINE_ASSIGN_OR_RETURN(t->offset, c.Read<uint64_t>(what + " data offset"));
  return absl::OkStatus();
}

absl::Status CheckTensorPlacement(const GgufFile& file, const GgufTensorInfo& t) {
  const std::string what = absl::StrCat("tensor '", t.name, "'");
  if (t.offset % file.alignment != 0) {
    return Invalid(file.path, absl::StrCat(what, ": data offset ", t.offset,
                                           " is not a multiple of the alignment ", file.alignment));
  }
  const uint64_t size = file.file_size;
  const bool inside = file.data_offset <= size && t.offset <= size - file.data_offset &&
                      t.n_bytes <= size - file.data_offset - t.offset;
  if (!inside) {
    return Invalid(
        file.path,
        absl::StrFormat(
            "%s: data [%u, %u + %u) lies past the end of the file (%u bytes; truncated?)", what,
            file.data_offset + t.offset, file.data_offset + t.offset, t.n_bytes, size));
  }
  return absl::OkStatus();
}

std::string TypeMismatch(const GgufFile& file, const std::string& key, const char* expected,
                         const GgufValue& v) {
  std::string found = ValueTypeName(v.type);
  if (v.type == ValueType::kArray) {
    found = absl::StrCat("array of ", ValueTypeName(v.array.elem_type));
  }
  return absl::StrCat(file.path, ": key '", key, "': expected ", expected, ", found ", found);
}

}  // namespace

// ---- GgufArray / GgufValue ----

bool GgufArray::IsInteger() const { return IsIntegerType(elem_type); }

bool GgufArray::IsNumeric() const {
  return IsIntegerType(elem_type) || elem_type == ValueType::kFloat32 ||
         elem_type == ValueType::kFloat64;
}

int64_t GgufArray::IntAt(uint64_t i) const {
  const uint8_t* p = raw.data() + i * ValueTypeSize(elem_type);
  auto load = [p]<typename T>(T) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return static_cast<int64_t>(v);
  };
  switch (elem_type) {
    case ValueType::kUint8:
      return load(uint8_t{});
    case ValueType::kInt8:
      return load(int8_t{});
    case ValueType::kBool:
      return load(uint8_t{}) != 0 ? 1 : 0;
    case ValueType::kUint16:
      return load(uint16_t{});
    case ValueType::kInt16:
      return load(int16_t{});
    case ValueType::kUint32:
      return load(uint32_t{});
    case ValueType::kInt32:
      return load(int32_t{});
    case ValueType::kUint64:
      return load(uint64_t{});
    case ValueType::kInt64:
      return load(int64_t{});
    case ValueType::kFloat32: {
      float f;
      std::memcpy(&f, p, 4);
      return static_cast<int64_t>(f);
    }
    case ValueType::kFloat64: {
      double f;
      std::memcpy(&f, p, 8);
      return static_cast<int64_t>(f);
    }
    default:
      return 0;
  }
}

double GgufArray::FloatAt(uint64_t i) const {
  const uint8_t* p = raw.data() + i * ValueTypeSize(elem_type);
  if (elem_type == ValueType::kFloat32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  if (elem_type == ValueType::kFloat64) {
    double f;
    std::memcpy(&f, p, 8);
    return f;
  }
  return static_cast<double>(IntAt(i));
}

GgufValue GgufValue::String(std::string s) {
  GgufValue v;
  v.type = ValueType::kString;
  v.str = std::move(s);
  return v;
}
GgufValue GgufValue::Uint32(uint32_t x) {
  GgufValue v;
  v.type = ValueType::kUint32;
  v.u = x;
  return v;
}
GgufValue GgufValue::Int32(int32_t x) {
  GgufValue v;
  v.type = ValueType::kInt32;
  v.i = x;
  return v;
}
GgufValue GgufValue::Float32(float x) {
  GgufValue v;
  v.type = ValueType::kFloat32;
  v.f = x;
  return v;
}
GgufValue GgufValue::Bool(bool x) {
  GgufValue v;
  v.type = ValueType::kBool;
  v.u = x ? 1 : 0;
  return v;
}

namespace {
template <typename T>
GgufValue PackedArray(ValueType elem_type, std::span<const T> values) {
  GgufValue v;
  v.type = ValueType::kArray;
  v.array.elem_type = elem_type;
  v.array.size = values.size();
  v.array.raw.resize(values.size_bytes());
  if (!values.empty()) std::memcpy(v.array.raw.data(), values.data(), values.size_bytes());
  return v;
}
}  // namespace

GgufValue GgufValue::StringArray(std::vector<std::string> values) {
  GgufValue v;
  v.type = ValueType::kArray;
  v.array.elem_type = ValueType::kString;
  v.array.size = values.size();
  v.array.strings = std::move(values);
  return v;
}
GgufValue GgufValue::Float32Array(std::span<const float> values) {
  return PackedArray(ValueType::kFloat32, values);
}
GgufValue GgufValue::Int32Array(std::span<const int32_t> values) {
  return PackedArray(ValueType::kInt32, values);
}
GgufValue GgufValue::Uint8Array(std::span<const uint8_t> values) {
  return PackedArray(ValueType::kUint8, values);
}

// ---- GgufFile ----

const GgufValue* GgufFile::Find(const std::string& key) const {
  auto it = kv_index.find(key);
  return it == kv_index.end() ? nullptr : &kvs[it->second].value;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  auto it = tensor_index.find(name);
  return it == tensor_index.end() ? nullptr : &tensors[it->second];
}

namespace {
absl::StatusOr<const GgufValue*> Require(const GgufFile& file, const std::string& key) {
  const GgufValue* v = file.Find(key);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat(file.path, ": missing GGUF metadata key '", key, "'"));
  }
  return v;
}
}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type != ValueType::kString) {
    return absl::InvalidArgumentError(TypeMismatch(*this, key, "string", *v));
  }
  return v->str;
}

absl::StatusOr<int64_t> GgufFile::GetInt(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (!IsIntegerType(v->type) || v->type == ValueType::kBool) {
    return absl::InvalidArgumentError(TypeMismatch(*this, key, "an integer", *v));
  }
  if (!IsUnsigned(v->type)) return v->i;
  if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": key '", key, "': value ", v->u, " is out of range"));
  }
  return static_cast<int64_t>(v->u);
}

absl::StatusOr<double> GgufFile::GetFloat(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type == ValueType::kFloat32 || v->type == ValueType::kFloat64) return v->f;
  if (IsIntegerType(v->type) && v->type != ValueType::kBool) {
    return IsUnsigned(v->type) ? static_cast<double>(v->u) : static_cast<double>(v->i);
  }
  return absl::InvalidArgumentError(TypeMismatch(*this, key, "a number", *v));
}

absl::StatusOr<bool> GgufFile::GetBool(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type != ValueType::kBool) {
    return absl::InvalidArgumentError(TypeMismatch(*this, key, "bool", *v));
  }
  return v->u != 0;
}

absl::StatusOr<std::vector<std::string>> GgufFile::GetStringArray(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type != ValueType::kArray || v->array.elem_type != ValueType::kString) {
    return absl::InvalidArgumentError(TypeMismatch(*this, key, "array of string", *v));
  }
  return v->array.strings;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type != ValueType::kArray || !v->array.IsInteger()) {
    return absl::InvalidArgumentError(TypeMismatch(*this, key, "array of integers", *v));
  }
  std::vector<int64_t> out(v->array.size);
  for (uint64_t i = 0; i < v->array.size; ++i) out[i] = v->array.IntAt(i);
  return out;
}

absl::StatusOr<std::vector<double>> GgufFile::GetFloatArray(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type != ValueType::kArray || !v->array.IsNumeric()) {
    return absl::InvalidArgumentError(TypeMismatch(*this, key, "array of numbers", *v));
  }
  std::vector<double> out(v->array.size);
  for (uint64_t i = 0; i < v->array.size; ++i) out[i] = v->array.FloatAt(i);
  return out;
}

absl::StatusOr<std::string> GgufFile::GetBytes(const std::string& key) const {
  ENGINE_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->type == ValueType::kString) return v->str;
  if (v->type == ValueType::kArray &&
      (v->array.elem_type == ValueType::kUint8 || v->array.elem_type == ValueType::kInt8)) {
    return std::string(v->array.raw.begin(), v->array.raw.end());
  }
  return absl::InvalidArgumentError(TypeMismatch(*this, key, "array of uint8 or string", *v));
}

// ---- Parse ----

absl::StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> bytes, const std::string& path) {
  GgufFile file;
  file.path = path;
  file.file_size = bytes.size();
  Cursor c(bytes, file.path);

  uint8_t magic[4];
  ENGINE_RETURN_IF_ERROR(c.ReadBytes(4, "magic", magic));
  if (std::memcmp(magic, kMagic, 4) != 0) {
    return Invalid(
        path, absl::StrFormat(
                  "not a GGUF file: expected magic 'GGUF' (47 47 55 46), found %02x %02x %02x %02x",
                  magic[0], magic[1], magic[2], magic[3]));
  }
  ENGINE_ASSIGN_OR_RETURN(file.version, c.Read<uint32_t>("version"));
  if (file.version == 1) {
    return absl::UnimplementedError(
        absl::StrCat(path, ": GGUF version 1 is not supported (expected 2 or 3)"));
  }
  if (file.version != 2 && file.version != 3) {
    const bool swapped = file.version != 0 && (file.version & 0xffffu) == 0;
    return absl::UnimplementedError(
        absl::StrCat(path, ": GGUF version ", file.version, " is not supported (expected 2 or 3)",
                     swapped ? "; this looks like a big-endian GGUF file" : ""));
  }
  ENGINE_ASSIGN_OR_RETURN(const uint64_t tensor_count, c.Read<uint64_t>("tensor count"));
  ENGINE_ASSIGN_OR_RETURN(const uint64_t kv_count, c.Read<uint64_t>("metadata key/value count"));
  // Each key/value takes at least 13 bytes (key length, value type, one byte); each tensor info
  // at least 24 (name length, n_dims, type, offset).
  if (kv_count > kMaxKvCount || kv_count > c.remaining() / 13) {
    return Invalid(path, absl::StrCat("metadata key/value count ", kv_count,
                                      " is impossible for a file of ", bytes.size(), " bytes"));
  }
  if (tensor_count > kMaxTensorCount || tensor_count > c.remaining() / 24) {
    return Invalid(path, absl::StrCat("tensor count ", tensor_count,
                                      " is impossible for a file of ", bytes.size(), " bytes"));
  }

  file.kvs.reserve(kv_count);
  for (uint64_t i = 0; i < kv_count; ++i) {
    GgufKv kv;
    ENGINE_ASSIGN_OR_RETURN(kv.key, c.String(absl::StrCat("metadata key #", i)));
    const std::string what = absl::StrCat("key '", kv.key, "'");
    ENGINE_ASSIGN_OR_RETURN(const ValueType type, ReadValueType(c, what));
    ENGINE_RETURN_IF_ERROR(ReadScalar(c, type, what, &kv.value));
    if (!file.kv_index.emplace(kv.key, file.kvs.size()).second) {
      return Invalid(path, absl::StrCat("duplicate metadata ", what));
    }
    file.kvs.push_back(std::move(kv));
  }
  ENGINE_RETURN_IF_ERROR(ParseAlignment(file, &file.alignment));
  std::string fp4lm_hint;
  ENGINE_ASSIGN_OR_RETURN(const bool fp4lm_types, AcceptsFp4lmTypes(file, &fp4lm_hint));

  file.tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    ENGINE_RETURN_IF_ERROR(ReadTensorInfo(c, i, fp4lm_types, fp4lm_hint, &t));
    if (!file.tensor_index.emplace(t.name, file.tensors.size()).second) {
      return Invalid(path, absl::StrCat("duplicate tensor '", t.name, "'"));
    }
    file.tensors.push_back(std::move(t));
  }
  file.data_offset = AlignUp(c.pos(), file.alignment);
  for (const GgufTensorInfo& t : file.tensors) {
    ENGINE_RETURN_IF_ERROR(CheckTensorPlacement(file, t));
  }
  return file;
}

// ---- Builder ----

namespace {

void PutU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
void PutU64(std::string& out, uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
void PutString(std::string& out, const std::string& s) {
  PutU64(out, s.size());
  out.append(s);
}

void PutArray(std::string& out, const GgufArray& a) {
  PutU32(out, static_cast<uint32_t>(a.elem_type));
  PutU64(out, a.size);
  if (a.elem_type == ValueType::kString) {
    for (const std::string& s : a.strings) PutString(out, s);
  } else if (a.elem_type == ValueType::kArray) {
    for (const GgufArray& inner : a.arrays) PutArray(out, inner);
  } else {
    out.append(reinterpret_cast<const char*>(a.raw.data()), a.raw.size());
  }
}

void PutScalar(std::string& out, const GgufValue& v) {
  auto put = [&out]<typename T>(T x) { out.append(reinterpret_cast<const char*>(&x), sizeof(T)); };
  switch (v.type) {
    case ValueType::kUint8:
      put(static_cast<uint8_t>(v.u));
      break;
    case ValueType::kBool:
      put(static_cast<uint8_t>(v.u != 0));
      break;
    case ValueType::kUint16:
      put(static_cast<uint16_t>(v.u));
      break;
    case ValueType::kUint32:
      put(static_cast<uint32_t>(v.u));
      break;
    case ValueType::kUint64:
      put(static_cast<uint64_t>(v.u));
      break;
    case ValueType::kInt8:
      put(static_cast<int8_t>(v.i));
      break;
    case ValueType::kInt16:
      put(static_cast<int16_t>(v.i));
      break;
    case ValueType::kInt32:
      put(static_cast<int32_t>(v.i));
      break;
    case ValueType::kInt64:
      put(static_cast<int64_t>(v.i));
      break;
    case ValueType::kFloat32:
      put(static_cast<float>(v.f));
      break;
    case ValueType::kFloat64:
      put(static_cast<double>(v.f));
      break;
    case ValueType::kString:
      PutString(out, v.str);
      break;
    case ValueType::kArray:
      PutArray(out, v.array);
      break;
  }
}

bool ArrayIsConsistent(const GgufArray& a) {
  switch (a.elem_type) {
    case ValueType::kString:
      return a.strings.size() == a.size;
    case ValueType::kArray:
      if (a.arrays.size() != a.size) return false;
      for (const GgufArray& inner : a.arrays) {
        if (!ArrayIsConsistent(inner)) return false;
      }
      return true;
    default:
      return a.raw.size() == a.size * ValueTypeSize(a.elem_type);
  }
}

}  // namespace

absl::Status GgufBuilder::AddTensor(std::string name, std::vector<int64_t> ne, GgmlType type,
                                    std::span<const uint8_t> data) {
  return AddTensor(std::move(name), std::move(ne), static_cast<uint32_t>(type), data);
}

absl::Status GgufBuilder::AddTensorCopy(std::string name, std::vector<int64_t> ne, GgmlType type,
                                        std::vector<uint8_t> data) {
  return AddTensorCopy(std::move(name), std::move(ne), static_cast<uint32_t>(type),
                       std::move(data));
}

absl::Status GgufBuilder::AddTensor(std::string name, std::vector<int64_t> ne, uint32_t type,
                                    std::span<const uint8_t> data) {
  const GgmlTypeTraits traits = TensorTypeInfo(type);
  if (traits.name == nullptr || ne.empty() || ne.size() > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF writer: tensor '", name, "': bad type or rank ", ne.size()));
  }
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF writer: tensor '", name, "': non-positive dimension ", d));
    }
    n *= d;
  }
  if (ne[0] % traits.block_size != 0 ||
      static_cast<uint64_t>(n / traits.block_size * traits.type_size) != data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("GGUF writer: tensor '", name,
                                                   "': ", data.size(), " bytes do not match ", n,
                                                   " ", traits.name, " elements"));
  }
  tensors_.push_back({std::move(name), std::move(ne), type, data});
  return absl::OkStatus();
}

absl::Status GgufBuilder::AddTensorCopy(std::string name, std::vector<int64_t> ne, uint32_t type,
                                        std::vector<uint8_t> data) {
  owned_.push_back(std::move(data));
  return AddTensor(std::move(name), std::move(ne), type, owned_.back());
}

absl::Status GgufBuilder::Write(const std::function<bool(const void*, size_t)>& sink) const {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("GGUF writer: alignment ", alignment_, " is not a power of two"));
  }
  bool has_alignment_key = false;
  bool w4a4 = false;
  for (const GgufKv& kv : kvs_) {
    if (kv.value.type == ValueType::kArray && !ArrayIsConsistent(kv.value.array)) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF writer: key '", kv.key, "': array size disagrees with its data"));
    }
    has_alignment_key |= kv.key == kAlignmentKey;
    w4a4 |= kv.key == keys::kFp4lmQuantization && kv.value.type == ValueType::kString &&
            kv.value.str == keys::kFp4lmW4A4;
  }
  for (const Tensor& t : tensors_) {
    if (IsFp4lmType(t.type) && !w4a4) {
      return absl::InvalidArgumentError(
          absl::StrCat("GGUF writer: tensor '", t.name, "' has fp4lm type ",
                       TensorTypeInfo(t.type).name, ", which readers accept only with ",
                       keys::kFp4lmQuantization, " = \"", keys::kFp4lmW4A4, "\""));
    }
  }
  const bool add_alignment = !has_alignment_key && alignment_ != kDefaultAlignment;

  std::string header(kMagic, kMagic + 4);
  PutU32(header, kVersion);
  PutU64(header, tensors_.size());
  PutU64(header, kvs_.size() + (add_alignment ? 1 : 0));
  if (add_alignment) {
    PutString(header, kAlignmentKey);
    PutU32(header, static_cast<uint32_t>(ValueType::kUint32));
    PutU32(header, alignment_);
  }
  for (const GgufKv& kv : kvs_) {
    PutString(header, kv.key);
    PutU32(header, static_cast<uint32_t>(kv.value.type));
    PutScalar(header, kv.value);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(header, t.name);
    PutU32(header, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) PutU64(header, static_cast<uint64_t>(d));
    PutU32(header, static_cast<uint32_t>(t.type));
    PutU64(header, offset);
    offset = AlignUp(offset + t.data.size(), alignment_);
  }
  header.resize(AlignUp(header.size(), alignment_), '\0');
  if (!sink(header.data(), header.size())) {
    return absl::DataLossError("GGUF writer: write failed in the header");
  }
  const std::string zeros(alignment_, '\0');
  for (const Tensor& t : tensors_) {
    const size_t pad = AlignUp(t.data.size(), alignment_) - t.data.size();
    if (!sink(t.data.data(), t.data.size()) || !sink(zeros.data(), pad)) {
      return absl::DataLossError(
          absl::StrCat("GGUF writer: write failed in tensor '", t.name, "'"));
    }
  }
  return absl::OkStatus();
}

absl::Status GgufBuilder::WriteFile(const std::string& path) const {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot open for writing: ", std::strerror(errno)));
  }
  const absl::Status written =
      Write([f](const void* data, size_t n) { return n == 0 || std::fwrite(data, 1, n, f) == n; });
  const int err = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written.ok()) {
    return absl::Status(written.code(),
                        absl::StrCat(path, ": ", written.message(), ": ", std::strerror(err)));
  }
  if (!closed) {
    return absl::DataLossError(absl::StrCat(path, ": close failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string GgufBuilder::Serialize() const {
  std::string out;
  const absl::Status s = Write([&out](const void* data, size_t n) {
    out.append(static_cast<const char*>(data), n);
    return true;
  });
  return s.ok() ? out : std::string();
}

}  // namespace engine::model::gguf
