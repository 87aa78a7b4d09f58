#ifndef AUDIOTAG_CLIENT_BULK_RESULT_SINK_H_
#define AUDIOTAG_CLIENT_BULK_RESULT_SINK_H_

// Where a bulk job's results go: results.jsonl (one line per track, written
// with one write() each) and the embedding shards. It also remembers, per
// content hash, where the line of the first track with that audio is, so
// duplicates copy it instead of being analyzed again.
//
// Ordering: with embeddings, lines wait in memory until their shard is
// flushed (see EmbeddingStore); a duplicate's line waits behind its
// original's. So on disk a line never names missing rows and a duplicate
// never precedes its original.
//
// Thread-safety: not thread-safe; the job holds its mutex around every call.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/bulk/durable_file.h"
#include "client/bulk/embedding_store.h"
#include "client/bulk/manifest.h"
#include "client/bulk/track_result.h"

namespace audiotag::bulk {

struct SinkOptions {
  // The folder of results.jsonl and embeddings/ (created).
  std::string dir;
  EmbeddingMode embeddings = EmbeddingMode::kPooled;
  // Rows per .npy shard and output. Default 4096.
  int64_t shard_rows = 4096;
  // Flush buffered lines (and shards) at least this often. Default 30 s.
  absl::Duration flush_period = absl::Seconds(30);
  // fdatasync results.jsonl at least this often. Default 1 s.
  absl::Duration sync_period = absl::Seconds(1);
};

class ResultSink {
 public:
  // Opens the folder, repairing a cut last line and reconciling embeddings
  // with the result lines (see EmbeddingStore::Open).
  static absl::StatusOr<std::unique_ptr<ResultSink>> Open(
      const SinkOptions& options);

  // Ids that already have a line (from earlier runs or this one).
  bool Done(const std::string& id) const { return done_ids_.contains(id); }
  int64_t recovered_lines() const { return recovered_lines_; }

  // Whether audio with this hash already has a result to copy.
  bool HasResult(const std::string& sha256) const;

  // Records an analyzed track; FAILED_PRECONDITION (and nothing recorded)
  // if its embeddings do not fit the shards so far.
  absl::Status Commit(const Track& track, const AnalyzedTrack& result);
  // Records a permanent error; `sha256` may be empty.
  absl::Status CommitError(const Track& track, const std::string& sha256,
                           const absl::Status& error);
  // Records `track` as a copy of the result for `sha256` (HasResult true).
  absl::Status CommitDuplicate(const Track& track, const std::string& sha256);

  // Writes everything buffered durably.
  absl::Status Finish();

 private:
  struct Location {
    int64_t offset = -1;  // in results.jsonl; -1 while pending
    int64_t length = 0;
    std::string body;  // while pending
  };

  ResultSink(SinkOptions options, LineLog log);
  absl::Status Recover(const std::string& contents);
  absl::Status Enqueue(const Track& track, const std::string& sha256,
                       std::string body, const std::string& duplicate_of);
  absl::Status FlushIfDue();
  absl::Status Flush();
  absl::StatusOr<std::string> BodyOf(const std::string& sha256) const;

  const SinkOptions options_;
  LineLog log_;
  std::unique_ptr<EmbeddingStore> store_;
  absl::flat_hash_set<std::string> done_ids_;
  absl::flat_hash_map<std::string, Location> by_sha_;
  absl::flat_hash_map<std::string, std::string> original_id_;  // by sha256
  struct Pending {
    std::string line;
    std::string sha256;  // whose Location to fix once written
  };
  std::vector<Pending> pending_;
  int64_t recovered_lines_ = 0;
  absl::Time last_flush_ = absl::Now();
  absl::Time last_sync_ = absl::Now();
};

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_RESULT_SINK_H_
