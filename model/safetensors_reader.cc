#include "model/safetensors_reader.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/core/status_macros.h"
#include "model/json_util.h"

namespace engine::model {

int64_t SafetensorsDtypeSize(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" ||
      dtype == "F8_E5M2") {
    return 1;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto result = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  ENGINE_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  result->file_ = std::move(mapped);
  const MappedFile& file = *result->file_;
  if (file.size() < 8) {
    return absl::DataLossError(absl::StrCat(path, ": safetensors file truncated: ", file.size(),
                                            " bytes, expected at least an 8-byte header length"));
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.data(), 8);
  if (header_len > kMaxSafetensorsHeaderBytes || header_len > file.size() - 8) {
    return absl::DataLossError(absl::StrCat(path, ": safetensors header length ", header_len,
                                            " exceeds the file (", file.size(), " bytes)"));
  }
  const std::string_view header_text(reinterpret_cast<const char*>(file.data() + 8), header_len);
  ENGINE_ASSIGN_OR_RETURN(Json header, ParseJson(header_text, path));
  if (!header.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": safetensors header is not an object"));
  }
  const uint64_t data_begin = 8 + header_len;
  const uint64_t data_size = file.size() - data_begin;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& entry = it.value();
    if (name == "__metadata__") {
      if (entry.is_object()) {
        for (auto m = entry.begin(); m != entry.end(); ++m) {
          if (m.value().is_string()) result->metadata_[m.key()] = m.value().get<std::string>();
        }
      }
      continue;
    }
    const std::string where = absl::StrCat(path, ": tensor '", name, "'");
    if (!entry.is_object()) return absl::InvalidArgumentError(where + ": entry is not an object");
    ENGINE_ASSIGN_OR_RETURN(std::string dtype, JsonString(entry, "dtype", where));
    const int64_t element_size = SafetensorsDtypeSize(dtype);
    if (element_size == 0) {
      return absl::UnimplementedError(absl::StrCat(where, ": unknown dtype '", dtype, "'"));
    }
    const Json* shape = entry.contains("shape") ? &entry["shape"] : nullptr;
    const Json* offsets = entry.contains("data_offsets") ? &entry["data_offsets"] : nullptr;
    if (shape == nullptr || !shape->is_array() || shape->size() > 8) {
      return absl::InvalidArgumentError(where + ": 'shape' must be an array of at most 8 dims");
    }
    if (offsets == nullptr || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return absl::InvalidArgumentError(where + ": 'data_offsets' must be [begin, end]");
    }
    SafetensorsTensor tensor{.dtype = dtype, .shape = {}, .data = {}};
    uint64_t elements = 1;
    for (const Json& dim : *shape) {
      if (!dim.is_number_unsigned()) {
        return absl::InvalidArgumentError(where + ": shape entries must be non-negative integers");
      }
      const uint64_t d = dim.get<uint64_t>();
      if (d > 0 && elements > std::numeric_limits<int64_t>::max() / 8 / d) {
        return absl::InvalidArgumentError(where + ": shape overflows");
      }
      elements *= d;
      tensor.shape.push_back(static_cast<int64_t>(d));
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    const uint64_t want_bytes = elements * static_cast<uint64_t>(element_size);
    if (begin > end || end > data_size) {
      return absl::DataLossError(absl::StrCat(where, ": data_offsets [", begin, ", ", end,
                                              ") outside the data section of ", data_size,
                                              " bytes (truncated file?)"));
    }
    if (end - begin != want_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": shape [", absl::StrJoin(tensor.shape, ", "), "] of ", dtype, " needs ",
          want_bytes, " bytes, data_offsets span ", end - begin));
    }
    tensor.data = file.bytes().subspan(data_begin + begin, want_bytes);
    result->tensors_.emplace(name, std::move(tensor));
  }
  return result;
}

}  // namespace engine::model
