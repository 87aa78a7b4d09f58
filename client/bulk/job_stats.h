#ifndef AUDIOTAG_CLIENT_BULK_JOB_STATS_H_
#define AUDIOTAG_CLIENT_BULK_JOB_STATS_H_

// Counters of one run of a bulk job, and how they are reported: the
// progress line and the final summary (stderr text and summary.json).

#include <cstdint>
#include <map>
#include <string>

namespace audiotag::bulk {

struct JobStats {
  int64_t total = 0;             // tracks of this shard in the manifest
  int64_t skipped = 0;           // already had a line from an earlier run
  int64_t skipped_failed = 0;    // of those, error lines
  int64_t analyzed = 0;          // analyzed by a server in this run
  int64_t duplicates = 0;        // copied from a track with the same audio
  int64_t duplicate_failed = 0;  // of those, copies of an error line
  // Tracks that failed, by status code name: permanent ones got an error
  // line; retryable ones that ran out of retries did not (the next run
  // tries them again).
  std::map<std::string, int64_t> errors;
  std::map<std::string, int64_t> retryable_failures;
  int64_t retries = 0;       // extra calls after retryable errors
  double audio_seconds = 0;  // audio analyzed in this run
  double wall_seconds = 0;

  // Tracks finished in this run (analyzed, duplicates, error lines).
  int64_t Finished() const;
  int64_t Failed() const;
  // Tracks of this shard with an error line, from this run or an earlier
  // one (the job's exit code is 4 when there are any).
  int64_t ErrorLines() const;
};

// "123/1000 done (12 failed) 45.6 tracks/s 12.3 audio h/h ETA 0:01:23".
std::string ProgressLine(const JobStats& stats);

// Several lines for people.
std::string SummaryText(const JobStats& stats);

// One JSON object.
std::string SummaryJson(const JobStats& stats, int shard_index,
                        int shard_count);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_JOB_STATS_H_
