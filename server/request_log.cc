#include "server/request_log.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace audiotag {

std::string LogQuote(absl::string_view value) {
  if (!value.empty() && value.find_first_of(" \"=") == absl::string_view::npos)
    return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c == '\n' ? ' ' : c);
  }
  return out + "\"";
}

void LogLine(absl::string_view level, absl::string_view message) {
  const std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", level, " ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

RequestLog::RequestLog(Metrics* metrics, uint64_t id, absl::string_view method,
                       absl::string_view request_id,
                       const v1::AnalyzeOptions& options, size_t bytes)
    : metrics_(metrics),
      id_(id),
      method_(method),
      request_id_(request_id),
      options_(options),
      bytes_(bytes),
      start_(absl::Now()) {}

void RequestLog::Finish(const absl::StatusOr<v1::AnalyzeResponse>& result) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  std::string line =
      absl::StrCat("msg=request method=", method_, " id=", id_,
                   " request_id=", LogQuote(request_id_),
                   " models=", LogQuote(absl::StrJoin(options_.models(), ",")),
                   " bytes=", bytes_,
                   " code=", absl::StatusCodeToString(result.status().code()));
  if (result.ok()) {
    const v1::Timing& t = result->timing();
    absl::StrAppend(
        &line,
        absl::StrFormat(" audio_seconds=%.3f decode_s=%.4f queue_s=%.4f "
                        "compute_s=%.4f",
                        result->audio().duration_seconds(), t.decode_seconds(),
                        t.queue_seconds(), t.compute_seconds()));
  } else {
    absl::StrAppend(&line, " error=", LogQuote(result.status().message()));
  }
  absl::StrAppend(&line, absl::StrFormat(" total_s=%.4f", seconds));
  LogLine(result.ok() ? "info" : "warn", line);
  if (metrics_ != nullptr) RecordMetrics(result, seconds);
}

void RequestLog::RecordMetrics(
    const absl::StatusOr<v1::AnalyzeResponse>& result, double seconds) {
  const absl::StatusCode code = result.status().code();
  if (!result.ok()) {
    if (options_.models().empty()) {
      metrics_->RecordRequest(method_, "", code, seconds);
    }
    for (const std::string& model : options_.models()) {
      metrics_->RecordRequest(method_, model, code, seconds);
    }
    return;
  }
  metrics_->ObserveDecode(result->timing().decode_seconds());
  for (const v1::ModelResult& r : result->results()) {
    metrics_->RecordRequest(method_, r.model(), code, seconds);
    metrics_->AddAudioSeconds(r.model(), result->audio().duration_seconds());
  }
}

}  // namespace audiotag
