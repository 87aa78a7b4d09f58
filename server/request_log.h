#ifndef AUDIOTAG_SERVER_REQUEST_LOG_H_
#define AUDIOTAG_SERVER_REQUEST_LOG_H_

// What every analysis call leaves behind when it ends: one structured log line
// (logfmt on stderr: method, ids, models, bytes, audio seconds, timings, code)
// and its Prometheus metrics.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/metrics/metrics.h"

namespace audiotag {

// Writes one "key=value ..." line to stderr with a UTC timestamp. Thread-safe.
void LogLine(absl::string_view level, absl::string_view message);

// Quotes a logfmt value when it holds spaces, quotes or '='.
std::string LogQuote(absl::string_view value);

class RequestLog {
 public:
  // `metrics` may be null.
  RequestLog(Metrics* metrics, uint64_t id, absl::string_view method,
             absl::string_view request_id, const v1::AnalyzeOptions& options,
             size_t bytes);
  void Finish(const absl::StatusOr<v1::AnalyzeResponse>& result);

 private:
  void RecordMetrics(const absl::StatusOr<v1::AnalyzeResponse>& result,
                     double seconds);

  Metrics* const metrics_;
  const uint64_t id_;
  const std::string method_;
  const std::string request_id_;
  const v1::AnalyzeOptions options_;
  const size_t bytes_;
  const absl::Time start_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_REQUEST_LOG_H_
