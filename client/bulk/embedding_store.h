#ifndef AUDIOTAG_CLIENT_BULK_EMBEDDING_STORE_H_
#define AUDIOTAG_CLIENT_BULK_EMBEDDING_STORE_H_

// The embeddings of a bulk job, one folder per model output:
//   <root>/<model>__<output>/shard-00000.npy   float32 [rows, dim]
//   <root>/<model>__<output>/index.jsonl       {"id","shard","row","rows"
//                                               [,"segments":[[s,e],...]]}
// Rows are buffered in memory and written a shard at a time by Flush(): each
// shard atomically (temp file, fsync, rename), then its index lines. The
// results.jsonl line of a track is written only after Flush() returned, so
// results.jsonl never names rows that are not durable; rows and index lines
// whose track has no result line (a crash between Flush and the result
// lines) are dropped by Open() on the next run.
//
// Thread-safety: not thread-safe; the job serializes calls.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "client/bulk/durable_file.h"
#include "client/bulk/track_result.h"

namespace audiotag::bulk {

class EmbeddingStore {
 public:
  // Opens `root` (created if missing), reconciling every output folder in it
  // with `done_ids`, the tracks that have a result line: index lines of other
  // tracks are dropped, and shard files no index line names are deleted.
  static absl::StatusOr<std::unique_ptr<EmbeddingStore>> Open(
      const std::string& root, const absl::flat_hash_set<std::string>& done_ids,
      int64_t shard_rows);
  ~EmbeddingStore();

  // Buffers a track's rows. Returns the "embeddings" JSON object for its
  // result line: {"<model>/<output>": {"shard": "<folder>/shard-N.npy",
  // "row": r, "rows": n}, ...}. FAILED_PRECONDITION if an output's dim
  // differs from earlier rows of the same output.
  absl::StatusOr<std::string> Add(const std::string& id,
                                  const std::vector<EmbeddingRows>& rows);

  // Whether some output has buffered a full shard.
  bool ShardFull() const;
  bool Empty() const;

  // Writes every buffered shard and its index lines durably.
  absl::Status Flush();

 private:
  struct Output;
  EmbeddingStore(std::string root, int64_t shard_rows);
  absl::StatusOr<Output*> GetOutput(const std::string& key);

  const std::string root_;
  const int64_t shard_rows_;
  std::map<std::string, std::unique_ptr<Output>> outputs_;
  absl::flat_hash_set<std::string> done_ids_;
};

// "<model>__<output>": the folder name of an output key "<model>/<output>".
std::string OutputFolder(const std::string& key);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_EMBEDDING_STORE_H_
