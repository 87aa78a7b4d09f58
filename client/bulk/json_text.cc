#include "client/bulk/json_text.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/json_util.h"

namespace audiotag::bulk {

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  out.reserve(s.size() + 2);
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
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
