#ifndef AUDIOTAG_CLIENT_BULK_EMBEDDING_STORE_H_
#define AUDIOTAG_CLIENT_BULK_EMBEDDING_STORE_H_

// The embeddings of a bulk job, one folder per model output:
//   <root>/<model>__<output>/shard-00000.npy   float32 [rows, dim]
//   <root>/<model>__<output>/index.jsonl       {"id","shard","row","rows"
//                                               [,"segments":[[s,e],...]]}
// Each output has one open shard: Add() appends a track's rows to it at once
// (one pwrite, then the row count in its 128-byte header is rewritten in
// place) and appends the track's index line; a new shard starts when the open
// one would pass `shard_rows`. Sync() makes everything added so far durable:
// fdatasync of the shards, then of the index files. The caller writes a
// track's result line after Add() and syncs the result lines after Sync(), so
// after a SIGKILL every result line's rows and index line are in the files
// (the page cache survives the process), and after a power loss the
// recovery below drops the result lines whose rows did not reach the disk.
//
// Recovery is two steps on the next run: Valid() tells the result sink which
// result lines name rows that are really there (index line and data), and
// Reconcile() then drops index lines of tracks without a result line,
// truncates every shard to the rows its index lines name (rewriting the
// header), deletes shards and temp files no index line names, and reopens
// the last shard for appending. So shards, index and results agree exactly,
// and a resumed job keeps filling the last shard instead of starting one.
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
#include "google/protobuf/struct.pb.h"

namespace audiotag::bulk {

class EmbeddingStore {
 public:
  // Opens `root` (created if missing) and reads every output folder in it:
  // the index lines (a cut last line is dropped) and each shard's dim and the
  // rows its file holds. Call Reconcile() before Add().
  static absl::StatusOr<std::unique_ptr<EmbeddingStore>> Open(
      const std::string& root, int64_t shard_rows);
  ~EmbeddingStore();

  // Whether every entry of a result line's "embeddings" object
  // ({"<model>/<output>": {"shard","row","rows"}, ...}) matches the index
  // line of `owner` (the track whose rows they are: the line's id, or its
  // duplicate_of) and lies inside its shard file.
  bool Valid(const std::string& owner,
             const google::protobuf::Struct& embeddings) const;

  // Keeps only the index lines of `done_ids` and makes the shards agree
  // with them (see above).
  absl::Status Reconcile(const absl::flat_hash_set<std::string>& done_ids);

  // Appends a track's rows and index lines (written, not yet synced).
  // Returns the "embeddings" JSON object for its result line:
  // {"<model>/<output>": {"shard": "<folder>/shard-N.npy", "row": r,
  // "rows": n}, ...}. FAILED_PRECONDITION (and nothing written) if an
  // output's dim differs from earlier rows of the same output.
  absl::StatusOr<std::string> Add(const std::string& id,
                                  const std::vector<EmbeddingRows>& rows);

  // fdatasync of every shard and index written since the last Sync (shards
  // first).
  absl::Status Sync();

 private:
  struct Output;
  EmbeddingStore(std::string root, int64_t shard_rows);
  // The output of `key`, opening (creating) its folder and index the first
  // time; `index_contents` receives what the index held then.
  absl::StatusOr<Output*> GetOutput(const std::string& key,
                                    std::string* index_contents = nullptr);
  absl::Status StartShard(Output& out, int dim);

  const std::string root_;
  const int64_t shard_rows_;
  std::map<std::string, std::unique_ptr<Output>> outputs_;
};

// "<model>__<output>": the folder name of an output key "<model>/<output>".
std::string OutputFolder(const std::string& key);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_EMBEDDING_STORE_H_
