#ifndef AUDIOTAG_SERVER_REQUEST_LOG_H_
#define AUDIOTAG_SERVER_REQUEST_LOG_H_

// What every call leaves behind when it ends: one structured log line
// (logfmt on stderr: method, ids, models, bytes, audio seconds, timings, code)
// and its Prometheus metrics.
//
// Bounded by construction: a line is at most kMaxLogLineBytes, control
// characters in it are escaped (a client's request_id cannot start a forged
// line), and model names a client sent that the repository does not know are
// counted under one label value, kUnknownModelLabel.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/metrics/metrics.h"
#include "src/model/model_repository.h"

namespace audiotag {

// Longest log line written, in bytes, before the newline; longer messages are
// cut and end with " truncated_bytes=N".
inline constexpr size_t kMaxLogLineBytes = 4096;

// The `model` label of calls that named a model the repository does not know.
inline constexpr char kUnknownModelLabel[] = "(unknown)";

// Writes one "ts=... level=... <message>" line to stderr with a UTC
// timestamp; control characters (\r, \n, ...) are written as escapes and the
// line is capped at kMaxLogLineBytes. Thread-safe.
void LogLine(absl::string_view level, absl::string_view message);

// Quotes a logfmt value when it is empty or holds spaces, quotes, '=' or
// backslashes.
std::string LogQuote(absl::string_view value);

// One finished analysis call (Analyze, AnalyzeStream).
class RequestLog {
 public:
  // `metrics` and `repository` may be null.
  RequestLog(Metrics* metrics, const ModelRepository* repository, uint64_t id,
             absl::string_view method, absl::string_view request_id,
             const v1::AnalyzeOptions& options, size_t bytes);
  void Finish(const absl::StatusOr<v1::AnalyzeResponse>& result);

 private:
  void RecordMetrics(const absl::StatusOr<v1::AnalyzeResponse>& result,
                     double seconds);

  Metrics* const metrics_;
  const ModelRepository* const repository_;
  const uint64_t id_;
  const std::string method_;
  const std::string request_id_;
  const v1::AnalyzeOptions& options_;
  const size_t bytes_;
  const absl::Time start_;
};

// One call that ends without an analysis: ListModels, GetModel, and analysis
// calls refused before they start (UNAUTHENTICATED, RESOURCE_EXHAUSTED,
// UNAVAILABLE while draining). Logs one line: method, peer, code, error.
void LogCall(absl::string_view method, absl::string_view peer,
             const absl::Status& status, absl::Duration elapsed);

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_REQUEST_LOG_H_
