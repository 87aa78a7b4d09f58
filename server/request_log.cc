#include "server/request_log.h"

#include <cstdio>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/analysis/analyzer.h"

namespace audiotag {
namespace {

// Appends `text` with control characters written as escapes.
void AppendEscaped(absl::string_view text, std::string* out) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else {
      absl::StrAppendFormat(out, "\\x%02x", u);
    }
  }
}

// The models a call used: the results' for a successful call, else the names
// it asked for (empty for a default request).
std::string ModelsOf(const v1::AnalyzeOptions& options,
                     const absl::StatusOr<v1::AnalyzeResponse>& result) {
  if (!result.ok()) return absl::StrJoin(options.models(), ",");
  std::vector<std::string> names;
  for (const v1::ModelResult& r : result->results()) names.push_back(r.model());
  return absl::StrJoin(names, ",");
}

}  // namespace

std::string LogQuote(absl::string_view value) {
  if (!value.empty() &&
      value.find_first_of(" \"=\\") == absl::string_view::npos) {
    return std::string(value);
  }
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

void LogLine(absl::string_view level, absl::string_view message) {
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", level, " ");
  AppendEscaped(message.substr(0, kMaxLogLineBytes), &line);
  if (line.size() > kMaxLogLineBytes || message.size() > kMaxLogLineBytes) {
    line.resize(std::min(line.size(), kMaxLogLineBytes - 48));
    absl::StrAppend(&line, " truncated=true message_bytes=", message.size());
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

RequestLog::RequestLog(Metrics* metrics, const ModelRepository* repository,
                       uint64_t id, absl::string_view method,
                       absl::string_view request_id,
                       const v1::AnalyzeOptions& options, size_t bytes)
    : metrics_(metrics),
      repository_(repository),
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
                   " models=", LogQuote(ModelsOf(options_, result)),
                   options_.models().empty() ? " default_models=true" : "",
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
    std::vector<std::string> skipped;
    for (const v1::SkippedModel& s : result->skipped()) {
      skipped.push_back(s.model());
    }
    if (!skipped.empty()) {
      absl::StrAppend(&line,
                      " skipped=", LogQuote(absl::StrJoin(skipped, ",")));
    }
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
      return;
    }
    // Known names get their own series; every other name shares one, so a
    // client cannot mint series. Only the names a request may hold count.
    std::set<std::string> labels;
    for (int i = 0; i < options_.models_size() &&
                    i < static_cast<int>(kMaxModelsPerRequest);
         ++i) {
      const std::string& name = options_.models(i);
      const bool known =
          repository_ != nullptr && repository_->Describe(name).ok();
      labels.insert(known ? name : kUnknownModelLabel);
    }
    if (options_.models_size() > static_cast<int>(kMaxModelsPerRequest)) {
      labels.insert(kUnknownModelLabel);
    }
    for (const std::string& label : labels) {
      metrics_->RecordRequest(method_, label, code, seconds);
    }
    return;
  }
  metrics_->ObserveDecode(result->timing().decode_seconds());
  for (const v1::ModelResult& r : result->results()) {
    metrics_->RecordRequest(method_, r.model(), code, seconds);
    metrics_->AddAudioSeconds(r.model(), result->audio().duration_seconds());
  }
}

void LogCall(absl::string_view method, absl::string_view peer,
             const absl::Status& status, absl::Duration elapsed) {
  std::string line =
      absl::StrCat("msg=call method=", method, " peer=", LogQuote(peer),
                   " code=", absl::StatusCodeToString(status.code()));
  if (!status.ok()) {
    absl::StrAppend(&line, " error=", LogQuote(status.message()));
  }
  absl::StrAppend(
      &line, absl::StrFormat(" total_s=%.4f", absl::ToDoubleSeconds(elapsed)));
  LogLine(status.ok() ? "info" : "warn", line);
}

}  // namespace audiotag
