#ifndef AUDIOTAG_SERVER_REQUEST_LOG_H_
#define AUDIOTAG_SERVER_REQUEST_LOG_H_

// One structured log line per analysis request (logfmt on stderr): method,
// ids, models, bytes, audio seconds, timings and the status code.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.pb.h"

namespace audiotag {

// Writes one "key=value ..." line to stderr with a UTC timestamp. Thread-safe.
void LogLine(absl::string_view level, absl::string_view message);

class RequestLog {
 public:
  RequestLog(uint64_t id, absl::string_view method,
             const v1::AnalyzeOptions& options, size_t bytes);
  void Finish(const absl::StatusOr<v1::AnalyzeResponse>& result);

 private:
  const uint64_t id_;
  const std::string method_;
  const std::string request_id_;
  const std::string models_;
  const size_t bytes_;
  const absl::Time start_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_REQUEST_LOG_H_
