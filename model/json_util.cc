#include "model/json_util.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace engine::model {
namespace {

const char* TypeName(const Json& value) { return value.type_name(); }

absl::Status WrongType(const std::string& key, const char* want, const Json& found,
                       const std::string& source) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": field '", key, "': expected ", want,
                                                 ", found ", TypeName(found)));
}

const Json* Find(const Json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

}  // namespace

absl::StatusOr<Json> ParseJson(std::string_view text, const std::string& source) {
  Json parsed = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed JSON"));
  }
  return parsed;
}

absl::StatusOr<int64_t> JsonIntOr(const Json& object, const std::string& key, int64_t fallback,
                                  const std::string& source) {
  const Json* value = Find(object, key);
  if (value == nullptr) return fallback;
  if (value->is_number_unsigned()) {
    if (value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": field '", key, "': ",
                                                     value->get<uint64_t>(),
                                                     " is out of range"));
    }
    return static_cast<int64_t>(value->get<uint64_t>());
  }
  if (value->is_number_integer()) return value->get<int64_t>();
  if (value->is_number_float()) {
    // 128.0 is accepted as 128; the range test comes first because converting a double outside
    // int64's range is undefined behaviour (found by fuzzing: 8.9e61).
    const double d = value->get<double>();
    if (std::abs(d) < static_cast<double>(std::numeric_limits<int32_t>::max()) &&
        d == std::trunc(d)) {
      return static_cast<int64_t>(d);
    }
  }
  return WrongType(key, "an integer", *value, source);
}

absl::StatusOr<double> JsonNumberOr(const Json& object, const std::string& key, double fallback,
                                    const std::string& source) {
  const Json* value = Find(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_number()) return WrongType(key, "a number", *value, source);
  return value->get<double>();
}

absl::StatusOr<bool> JsonBoolOr(const Json& object, const std::string& key, bool fallback,
                                const std::string& source) {
  const Json* value = Find(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) return WrongType(key, "a boolean", *value, source);
  return value->get<bool>();
}

absl::StatusOr<int64_t> JsonInt(const Json& object, const std::string& key,
                                const std::string& source) {
  if (Find(object, key) == nullptr) {
    return absl::NotFoundError(absl::StrCat(source, ": missing field '", key, "'"));
  }
  return JsonIntOr(object, key, 0, source);
}

absl::StatusOr<double> JsonNumber(const Json& object, const std::string& key,
                                  const std::string& source) {
  if (Find(object, key) == nullptr) {
    return absl::NotFoundError(absl::StrCat(source, ": missing field '", key, "'"));
  }
  return JsonNumberOr(object, key, 0.0, source);
}

absl::StatusOr<std::string> JsonString(const Json& object, const std::string& key,
                                       const std::string& source) {
  const Json* value = Find(object, key);
  if (value == nullptr) {
    return absl::NotFoundError(absl::StrCat(source, ": missing field '", key, "'"));
  }
  if (!value->is_string()) return WrongType(key, "a string", *value, source);
  return value->get<std::string>();
}

}  // namespace engine::model
