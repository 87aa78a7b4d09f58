// audiotag bulk: tags and embeds a whole catalog, resumably. See docs/bulk.md.
//
//   audiotag bulk MANIFEST --output=DIR [--server=a:50051,b:50051]
//   audiotag bulk --manifest=MANIFEST --output=DIR
//   audiotag bulk --input_dir=MUSIC --output=DIR --embeddings=segments
//
// Exit codes: 0 every track has a result line and none is an error line;
// 1 the output could not be written; 2 bad usage; 3 some tracks failed with
// retryable errors and have no line (run again); 4 some tracks have error
// lines (files that cannot be tagged).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/bulk/bulk_job.h"
#include "client/bulk/durable_file.h"
#include "client/bulk/shard.h"
#include "client/commands.h"
#include "client/connection_flags.h"
#include "client/request_flags.h"
#include "src/common/command_line.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(double, timeout_seconds);
ABSL_DECLARE_FLAG(int64_t, max_message_bytes);
// Shared with bench (client/bench_command.cc defines it, default 1).
ABSL_DECLARE_FLAG(int, concurrency);

ABSL_FLAG(std::string, manifest, "",
          "bulk: the manifest (same as giving it as the one argument).");
ABSL_FLAG(
    std::string, input_dir, "",
    "bulk: tag every audio file under this folder instead of a manifest.");
ABSL_FLAG(std::string, output, "", "bulk: the output folder (required).");
ABSL_FLAG(std::string, embeddings, "pooled",
          "bulk: embeddings to store in .npy shards: pooled, segments, none.");
ABSL_FLAG(int, max_retries, 6,
          "bulk: retries of UNAVAILABLE, RESOURCE_EXHAUSTED, "
          "DEADLINE_EXCEEDED per track.");
ABSL_FLAG(
    int, retry_base_ms, 200,
    "bulk: first retry backoff bound in ms; doubles per retry (jittered).");
ABSL_FLAG(int, shard_index, -1,
          "bulk: this worker's shard; default $JOB_COMPLETION_INDEX or 0.");
ABSL_FLAG(int, shard_count, 1, "bulk: number of workers sharing the manifest.");
ABSL_FLAG(int64_t, embeddings_shard_rows, 4096,
          "bulk: rows per .npy shard (result lines wait for their shard).");
ABSL_FLAG(double, flush_seconds, 1,
          "bulk: fsync results, index files and shards at least this often.");
ABSL_FLAG(double, progress_seconds, 10,
          "bulk: progress line period when stderr is not a terminal.");

namespace audiotag {
namespace {

// Calls in flight when --concurrency is left at bench's default.
constexpr int kDefaultConcurrency = 16;

int Concurrency() {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag("concurrency");
  if (flag != nullptr && flag->CurrentValue() == flag->DefaultValue()) {
    return kDefaultConcurrency;
  }
  return absl::GetFlag(FLAGS_concurrency);
}

int Usage(const std::string& why) {
  std::cerr << "audiotag bulk: " << why
            << "\nusage: audiotag bulk MANIFEST --output=DIR [flags]\n"
               "       audiotag bulk --manifest=MANIFEST --output=DIR [flags]\n"
               "       audiotag bulk --input_dir=DIR --output=DIR [flags]\n";
  return 2;
}

// The shared request flags (client/request_flags.h), priority bulk unless
// --priority says otherwise. Bulk does not take --outputs: tags and
// activations always, embeddings as --embeddings says.
absl::StatusOr<v1::AnalyzeOptions> RequestFromFlags(bulk::EmbeddingMode mode) {
  absl::StatusOr<v1::AnalyzeOptions> request =
      RequestOptionsFromFlags(v1::PRIORITY_BULK);
  if (!request.ok()) return request.status();
  v1::OutputSelection* outputs = request->mutable_outputs();
  outputs->Clear();
  outputs->set_tags(true);
  outputs->set_activations(true);
  outputs->set_embeddings(mode == bulk::EmbeddingMode::kPooled);
  outputs->set_segment_embeddings(mode == bulk::EmbeddingMode::kSegments);
  return request;
}

absl::StatusOr<bulk::EmbeddingMode> EmbeddingModeFromFlag() {
  const std::string mode = absl::GetFlag(FLAGS_embeddings);
  if (mode == "pooled") return bulk::EmbeddingMode::kPooled;
  if (mode == "segments") return bulk::EmbeddingMode::kSegments;
  if (mode == "none") return bulk::EmbeddingMode::kNone;
  return absl::InvalidArgumentError(
      "--embeddings must be pooled, segments or none");
}

absl::StatusOr<std::vector<bulk::Track>> ShardTracks(
    const std::string& manifest, int index, int count) {
  absl::StatusOr<std::vector<bulk::Track>> all =
      manifest.empty() ? bulk::ListAudioFiles(absl::GetFlag(FLAGS_input_dir))
                       : bulk::ReadManifest(manifest);
  if (!all.ok() || count == 1) return all;
  std::vector<bulk::Track> mine;
  for (bulk::Track& track : *all) {
    if (bulk::InShard(track.id, index, count)) mine.push_back(std::move(track));
  }
  return mine;
}

bulk::JobOptions JobOptionsFromFlags(bulk::EmbeddingMode mode,
                                     const std::string& dir) {
  bulk::JobOptions options;
  options.sink.dir = dir;
  options.sink.embeddings = mode;
  options.sink.shard_rows =
      std::max<int64_t>(1, absl::GetFlag(FLAGS_embeddings_shard_rows));
  options.sink.sync_period = absl::Seconds(absl::GetFlag(FLAGS_flush_seconds));
  options.concurrency = Concurrency();
  options.retry.max_retries = absl::GetFlag(FLAGS_max_retries);
  options.retry.base = absl::Milliseconds(absl::GetFlag(FLAGS_retry_base_ms));
  options.progress_terminal = isatty(STDERR_FILENO) != 0;
  options.progress_period =
      absl::Seconds(absl::GetFlag(FLAGS_progress_seconds));
  return options;
}

ClientOptions ClientOptionsFromFlags(const Connection& connection) {
  ClientOptions client;
  client.connection = connection;
  client.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  client.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  return client;
}

int Fail(const absl::Status& status) {
  std::cerr << "audiotag bulk: " << status << "\n";
  return 1;
}

}  // namespace

int RunBulkCommand(const std::vector<std::string>& args) {
  const std::string output = absl::GetFlag(FLAGS_output);
  if (output.empty()) return Usage("--output is required");
  std::string manifest = absl::GetFlag(FLAGS_manifest);
  if (args.size() > 1 || (!args.empty() && !manifest.empty())) {
    return Usage("give one MANIFEST, as the argument or as --manifest");
  }
  if (!args.empty()) manifest = args[0];
  if (manifest.empty() == absl::GetFlag(FLAGS_input_dir).empty())
    return Usage("give either a MANIFEST or --input_dir");
  if (absl::GetFlag(FLAGS_server).empty()) return Usage("--server is empty");
  if (!(absl::GetFlag(FLAGS_flush_seconds) > 0))
    return Usage("--flush_seconds must be > 0");
  if (absl::GetFlag(FLAGS_embeddings_shard_rows) < 1)
    return Usage("--embeddings_shard_rows must be >= 1");
  if (Concurrency() < 1) return Usage("--concurrency must be >= 1");
  if (absl::GetFlag(FLAGS_max_retries) < 0)
    return Usage("--max_retries must be >= 0");
  const int count = absl::GetFlag(FLAGS_shard_count);
  absl::StatusOr<int> index =
      bulk::ResolveShardIndex(absl::GetFlag(FLAGS_shard_index),
                              std::getenv("JOB_COMPLETION_INDEX"), count);
  if (!index.ok()) return Usage(std::string(index.status().message()));
  absl::StatusOr<bulk::EmbeddingMode> mode = EmbeddingModeFromFlag();
  if (!mode.ok()) return Usage(std::string(mode.status().message()));
  absl::StatusOr<v1::AnalyzeOptions> request = RequestFromFlags(*mode);
  if (!request.ok()) return Usage(std::string(request.status().message()));
  absl::StatusOr<Connection> connection = ConnectionFromFlags();
  if (!connection.ok())
    return Usage(std::string(connection.status().message()));
  if (absl::GetFlag(FLAGS_dry_run)) return FinishDryRun();
  absl::StatusOr<std::vector<bulk::Track>> tracks =
      ShardTracks(manifest, *index, count);
  if (!tracks.ok()) return Fail(tracks.status());

  const std::string dir = count == 1 ? output
                                     : absl::StrFormat("%s/shard-%05d-of-%05d",
                                                       output, *index, count);
  bulk::ServerPool servers(
      absl::StrSplit(absl::GetFlag(FLAGS_server), ',', absl::SkipEmpty()),
      ClientOptionsFromFlags(*connection));
  bulk::BulkJob job(JobOptionsFromFlags(*mode, dir), &servers, *request);
  absl::StatusOr<bulk::JobStats> stats = job.Run(*tracks);
  if (!stats.ok()) return Fail(stats.status());
  std::cerr << bulk::SummaryText(*stats);
  if (absl::Status s = bulk::WriteFileAtomically(
          dir + "/summary.json",
          bulk::SummaryJson(*stats, *index, count) + "\n");
      !s.ok()) {
    return Fail(s);
  }
  if (!stats->retryable_failures.empty()) return 3;
  return stats->ErrorLines() > 0 ? 4 : 0;
}

}  // namespace audiotag
