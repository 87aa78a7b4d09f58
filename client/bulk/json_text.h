#ifndef AUDIOTAG_CLIENT_BULK_JSON_TEXT_H_
#define AUDIOTAG_CLIENT_BULK_JSON_TEXT_H_

// Small helpers to write and read the one-line JSON records of a bulk job.
// Writing is by hand (fixed key order, compact); reading goes through
// protobuf's JSON parser into a google.protobuf.Struct.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace audiotag::bulk {

// `s` as a quoted JSON string, escaped (UTF-8 passes through).
std::string JsonString(absl::string_view s);

// A JSON number with up to 7 significant digits; null if not finite.
std::string JsonNumber(double v);

// Parses one JSON object; INVALID_ARGUMENT with the parser's message.
absl::StatusOr<google::protobuf::Struct> ParseJsonObject(
    absl::string_view line);

// The string field `key` of `object`; a whole number is printed without a
// fraction. Empty if absent or of another type.
std::string StringField(const google::protobuf::Struct& object,
                        const std::string& key);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_JSON_TEXT_H_
