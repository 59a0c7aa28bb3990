// Checked access to JSON documents from untrusted files (config.json, safetensors headers).
// nlohmann::json is used with exceptions avoided: parsing never throws, and every accessor
// checks the type before reading, returning an absl::Status that names the file and the key.
#ifndef FP4LM_MODEL_JSON_UTIL_H_
#define FP4LM_MODEL_JSON_UTIL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace engine::model {

using Json = nlohmann::json;

// InvalidArgument naming `source` if `text` is not valid JSON.
absl::StatusOr<Json> ParseJson(std::string_view text, const std::string& source);

// Required fields: NotFound if absent, InvalidArgument if of the wrong type or out of range.
absl::StatusOr<int64_t> JsonInt(const Json& object, const std::string& key,
                                const std::string& source);
absl::StatusOr<double> JsonNumber(const Json& object, const std::string& key,
                                  const std::string& source);
absl::StatusOr<std::string> JsonString(const Json& object, const std::string& key,
                                       const std::string& source);
// Optional fields: `fallback` if absent or null; an error only if present with the wrong type.
absl::StatusOr<int64_t> JsonIntOr(const Json& object, const std::string& key, int64_t fallback,
                                  const std::string& source);
absl::StatusOr<double> JsonNumberOr(const Json& object, const std::string& key, double fallback,
                                    const std::string& source);
absl::StatusOr<bool> JsonBoolOr(const Json& object, const std::string& key, bool fallback,
                                const std::string& source);

}  // namespace engine::model

#endif  // FP4LM_MODEL_JSON_UTIL_H_
