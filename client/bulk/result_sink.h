#ifndef AUDIOTAG_CLIENT_BULK_RESULT_SINK_H_
#define AUDIOTAG_CLIENT_BULK_RESULT_SINK_H_

// Where a bulk job's results go: results.jsonl (one line per track, written
// with one write() each) and the embedding shards. It also remembers, per
// content hash, where the line of the first track with that audio is, so
// duplicates copy it instead of being analyzed again.
//
// Durability: a track's embedding rows and index lines, then its result
// line, are written as soon as it is committed, so a SIGKILL loses only the
// tracks still in flight. Every `sync_period` (and at Finish) the shards, the
// index files and then results.jsonl are fdatasynced in that order, so after
// a power loss at most the last period's lines are gone, and a result line
// whose rows did not reach the disk is dropped on the next Open (its track
// is analyzed again).
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
  // Rows per .npy shard and output (a track's rows never span two shards).
  // Default 4096.
  int64_t shard_rows = 4096;
  // fdatasync shards, index files and results.jsonl at least this often
  // (SyncIfDue). Default 1 s.
  absl::Duration sync_period = absl::Seconds(1);
};

class ResultSink {
 public:
  // Opens the folder: cuts a partial last line, drops result lines whose
  // embedding rows are not on disk (a power loss), and reconciles the
  // embeddings with the remaining lines (see EmbeddingStore).
  static absl::StatusOr<std::unique_ptr<ResultSink>> Open(
      const SinkOptions& options);

  // Ids that already have a line (from earlier runs or this one).
  bool Done(const std::string& id) const { return done_ids_.contains(id); }
  // Ids whose line is an error line.
  bool Failed(const std::string& id) const { return failed_ids_.contains(id); }
  // Complete lines found by Open, and how many of them it dropped.
  int64_t recovered_lines() const { return recovered_lines_; }
  int64_t dropped_lines() const { return dropped_lines_; }

  // Whether audio with this hash already has a result to copy.
  bool HasResult(const std::string& sha256) const;

  // Writes an analyzed track's rows and line; FAILED_PRECONDITION (and
  // nothing written) if its embeddings do not fit the shards so far.
  absl::Status Commit(const Track& track, const AnalyzedTrack& result);
  // Writes a permanent error line; `sha256` may be empty.
  absl::Status CommitError(const Track& track, const std::string& sha256,
                           const absl::Status& error);
  // Writes `track`'s line as a copy of the result for `sha256` (HasResult
  // true).
  absl::Status CommitDuplicate(const Track& track, const std::string& sha256);

  // Syncs if the last sync is `sync_period` old and something was written.
  absl::Status SyncIfDue();
  // Makes everything written durable.
  absl::Status Finish();

 private:
  struct Location {
    int64_t offset = 0;  // in results.jsonl
    int64_t length = 0;
  };

  ResultSink(SinkOptions options, LineLog log);
  absl::Status Recover(const std::string& contents);
  absl::Status Write(const Track& track, const std::string& sha256,
                     const std::string& body, const std::string& duplicate_of,
                     bool failed);
  absl::Status Sync();
  absl::StatusOr<std::string> BodyOf(const std::string& sha256) const;

  const SinkOptions options_;
  LineLog log_;
  std::unique_ptr<EmbeddingStore> store_;
  absl::flat_hash_set<std::string> done_ids_;
  absl::flat_hash_set<std::string> failed_ids_;
  absl::flat_hash_map<std::string, Location> by_sha_;
  absl::flat_hash_map<std::string, std::string> original_id_;  // by sha256
  absl::flat_hash_set<std::string> failed_sha_;  // error lines, by sha256
  int64_t recovered_lines_ = 0;
  int64_t dropped_lines_ = 0;
  bool unsynced_ = false;
  absl::Time last_sync_ = absl::Now();
};

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_RESULT_SINK_H_
