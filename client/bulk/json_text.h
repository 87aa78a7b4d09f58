#ifndef AUDIOTAG_CLIENT_BULK_JSON_TEXT_H_
#define AUDIOTAG_CLIENT_BULK_JSON_TEXT_H_

// Small helpers to write and read the one-line JSON records of a bulk job.
// Records are assembled in a fixed key order from values that protobuf's
// JSON printer encodes (strings) or %.7g (numbers); reading goes through
// protobuf's JSON parser into a google.protobuf.Struct.

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"

namespace audiotag::bulk {

// Whether `s` is valid UTF-8 (JSON strings must be).
bool IsUtf8(absl::string_view s);

// `s` as a quoted JSON string, escaped by protobuf's JSON printer. Bytes
// that are not valid UTF-8 become '?' (ids and paths are checked to be UTF-8
// before a job starts; this only guards messages from elsewhere).
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
