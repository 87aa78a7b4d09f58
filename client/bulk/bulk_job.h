#ifndef AUDIOTAG_CLIENT_BULK_BULK_JOB_H_
#define AUDIOTAG_CLIENT_BULK_BULK_JOB_H_

// One run of a bulk job over a list of tracks: `concurrency` worker threads
// each read a file, hash it, and (unless its id is already done or its audio
// was seen) send it to the servers with retries; results go to a ResultSink.
//
// Dedup: the first track with a given SHA-256 is analyzed; tracks with the
// same audio that arrive while it is in flight wait for it, later ones copy
// its line at once (with their own id and path and "duplicate_of").
//
// Thread-safety: Run is called once, from one thread.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/bulk/job_stats.h"
#include "client/bulk/manifest.h"
#include "client/bulk/result_sink.h"
#include "client/bulk/retry_policy.h"
#include "client/bulk/server_pool.h"

namespace audiotag::bulk {

struct JobOptions {
  SinkOptions sink;
  // Calls in flight (worker threads). Default 16.
  int concurrency = 16;
  RetryPolicy retry;
  // Progress on stderr: the in-place line on a terminal, else a line every
  // `progress_period`. Default 10 s.
  bool progress_terminal = false;
  absl::Duration progress_period = absl::Seconds(10);
};

class BulkJob {
 public:
  // `servers` must outlive the job. `request` is sent with every track.
  BulkJob(JobOptions options, ServerPool* servers, v1::AnalyzeOptions request);

  // Works through `tracks` (this shard's); fails only if the output cannot
  // be written, never for a track's own error.
  absl::StatusOr<JobStats> Run(const std::vector<Track>& tracks);

 private:
  void Work(const std::vector<const Track*>& todo);
  void Process(const Track& track);
  // Returns false if the track waits for an in-flight twin.
  bool Claim(const Track& track, const std::string& sha256);
  void Analyze(const Track& track, const std::string& sha256,
               const std::string& audio);
  void Finish(const Track& track, const std::string& sha256,
              const absl::StatusOr<AnalyzedTrack>& result);
  void Record(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls the sink's SyncIfDue a few times per sync period until stopping_.
  void SyncLoop();
  JobStats Snapshot();

  const JobOptions options_;
  ServerPool* const servers_;
  const v1::AnalyzeOptions request_;
  const absl::Time start_ = absl::Now();
  std::atomic<size_t> next_{0};

  absl::Mutex mu_;
  std::unique_ptr<ResultSink> sink_ ABSL_GUARDED_BY(mu_);
  // Per sha256 being analyzed: tracks with the same audio waiting for it.
  absl::flat_hash_map<std::string, std::vector<Track>> in_flight_
      ABSL_GUARDED_BY(mu_);
  JobStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_BULK_JOB_H_
