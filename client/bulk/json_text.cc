#include "client/bulk/json_text.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/stubs/common.h"
#include "google/protobuf/stubs/strutil.h"
#include "google/protobuf/util/json_util.h"

namespace audiotag::bulk {

bool IsUtf8(absl::string_view s) {
  return google::protobuf::internal::IsStructurallyValidUTF8(s.data(),
                                                             s.size());
}

std::string JsonString(absl::string_view s) {
  google::protobuf::Value value;
  if (IsUtf8(s)) {
    value.set_string_value(std::string(s));
  } else {
    // Protobuf's printer would drop the bad bytes silently; make them
    // visible instead.
    std::string coerced(s);
    google::protobuf::internal::UTF8CoerceToStructurallyValid(
        google::protobuf::StringPiece(s.data(), s.size()), coerced.data(), '?');
    value.set_string_value(std::move(coerced));
  }
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) {
    return "null";
  }
  return json;
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.7g", v);
}

absl::StatusOr<google::protobuf::Struct> ParseJsonObject(
    absl::string_view line) {
  google::protobuf::Struct object;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(line.data(), line.size()), &object);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a JSON object: ", status.message().as_string()));
  }
  return object;
}

std::string StringField(const google::protobuf::Struct& object,
                        const std::string& key) {
  const auto it = object.fields().find(key);
  if (it == object.fields().end()) return "";
  const google::protobuf::Value& v = it->second;
  if (v.has_string_value()) return v.string_value();
  if (v.has_number_value() && v.number_value() == std::floor(v.number_value()))
    return absl::StrFormat("%.0f", v.number_value());
  return "";
}

}  // namespace audiotag::bulk
