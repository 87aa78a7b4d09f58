#include "client/bulk/job_stats.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/bulk/json_text.h"

namespace audiotag::bulk {
namespace {

int64_t Sum(const std::map<std::string, int64_t>& counts) {
  int64_t sum = 0;
  for (const auto& [code, n] : counts) sum += n;
  return sum;
}

double PerSecond(double n, double seconds) {
  return seconds > 0 ? n / seconds : 0;
}

std::string CountsJson(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> entries;
  for (const auto& [code, n] : counts) {
    entries.push_back(absl::StrCat(JsonString(code), ":", n));
  }
  return absl::StrCat("{", absl::StrJoin(entries, ","), "}");
}

std::string CountsText(const std::map<std::string, int64_t>& counts) {
  std::vector<std::string> entries;
  for (const auto& [code, n] : counts) {
    entries.push_back(absl::StrCat(code, " ", n));
  }
  return entries.empty() ? "none" : absl::StrJoin(entries, ", ");
}

}  // namespace

int64_t JobStats::Finished() const {
  return analyzed + duplicates + Sum(errors);
}

int64_t JobStats::Failed() const {
  return Sum(errors) + Sum(retryable_failures);
}

int64_t JobStats::ErrorLines() const {
  return Sum(errors) + skipped_failed + duplicate_failed;
}

std::string ProgressLine(const JobStats& s) {
  const int64_t done = s.skipped + s.Finished();
  const double rate = PerSecond(s.Finished(), s.wall_seconds);
  const int64_t left =
      std::max<int64_t>(0, s.total - done - Sum(s.retryable_failures));
  std::string eta = "--:--:--";
  if (rate > 0) {
    const int64_t secs = static_cast<int64_t>(left / rate);
    eta =
        absl::StrFormat("%d:%02d:%02d", secs / 3600, secs / 60 % 60, secs % 60);
  }
  return absl::StrFormat(
      "%d/%d done (%d failed) %.1f tracks/s %.1f audio h/h ETA %s", done,
      s.total, s.Failed(), rate, PerSecond(s.audio_seconds, s.wall_seconds),
      eta);
}

std::string SummaryText(const JobStats& s) {
  return absl::StrFormat(
      "audiotag bulk: %d tracks: %d analyzed, %d duplicates, %d skipped "
      "(already done, %d of them error lines), %d failed\n"
      "  error lines: %s\n"
      "  not written (retry by running again): %s\n"
      "  %.3f audio hours in %.1f s: %.2f tracks/s, %.1f audio hours per "
      "hour, %d retries\n",
      s.total, s.analyzed, s.duplicates, s.skipped, s.skipped_failed,
      s.Failed(), CountsText(s.errors), CountsText(s.retryable_failures),
      s.audio_seconds / 3600, s.wall_seconds,
      PerSecond(s.Finished(), s.wall_seconds),
      PerSecond(s.audio_seconds, s.wall_seconds), s.retries);
}

std::string SummaryJson(const JobStats& s, int shard_index, int shard_count) {
  return absl::StrCat(
      "{\"shard_index\":", shard_index, ",\"shard_count\":", shard_count,
      ",\"total\":", s.total, ",\"done\":", s.Finished(),
      ",\"analyzed\":", s.analyzed, ",\"duplicates\":", s.duplicates,
      ",\"skipped\":", s.skipped, ",\"skipped_error_lines\":", s.skipped_failed,
      ",\"failed\":", s.Failed(), ",\"error_lines\":", s.ErrorLines(),
      ",\"errors\":", CountsJson(s.errors),
      ",\"retryable_failures\":", CountsJson(s.retryable_failures),
      ",\"retries\":", s.retries,
      ",\"audio_hours\":", JsonNumber(s.audio_seconds / 3600),
      ",\"wall_seconds\":", JsonNumber(s.wall_seconds),
      ",\"tracks_per_second\":",
      JsonNumber(PerSecond(s.Finished(), s.wall_seconds)),
      ",\"audio_hours_per_hour\":",
      JsonNumber(PerSecond(s.audio_seconds, s.wall_seconds)), "}");
}

}  // namespace audiotag::bulk
