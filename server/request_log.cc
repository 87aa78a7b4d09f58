#include "server/request_log.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace audiotag {
namespace {

// Quotes a logfmt value when it needs it.
std::string Quote(absl::string_view value) {
  if (!value.empty() && value.find_first_of(" \"=") == absl::string_view::npos)
    return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c == '\n' ? ' ' : c);
  }
  return out + "\"";
}

}  // namespace

void LogLine(absl::string_view level, absl::string_view message) {
  const std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", level, " ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

RequestLog::RequestLog(uint64_t id, absl::string_view method,
                       const v1::AnalyzeOptions& options, size_t bytes)
    : id_(id),
      method_(method),
      request_id_(options.request_id()),
      models_(absl::StrJoin(options.models(), ",")),
      bytes_(bytes),
      start_(absl::Now()) {}

void RequestLog::Finish(const absl::StatusOr<v1::AnalyzeResponse>& result) {
  std::string line =
      absl::StrCat("msg=request method=", method_, " id=", id_,
                   " request_id=", Quote(request_id_),
                   " models=", Quote(models_), " bytes=", bytes_,
                   " code=", absl::StatusCodeToString(result.status().code()));
  if (result.ok()) {
    const v1::Timing& t = result->timing();
    absl::StrAppend(
        &line,
        absl::StrFormat(
            " audio_seconds=%.3f decode_s=%.4f queue_s=%.4f compute_s=%.4f",
            result->audio().duration_seconds(), t.decode_seconds(),
            t.queue_seconds(), t.compute_seconds()));
  } else {
    absl::StrAppend(&line, " error=", Quote(result.status().message()));
  }
  absl::StrAppend(&line,
                  absl::StrFormat(" total_s=%.4f",
                                  absl::ToDoubleSeconds(absl::Now() - start_)));
  LogLine(result.ok() ? "info" : "warn", line);
}

}  // namespace audiotag
