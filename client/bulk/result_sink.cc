#include "client/bulk/result_sink.h"

#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/bulk/json_text.h"

namespace audiotag::bulk {
namespace {

constexpr char kShaKey[] = "\"sha256\":";

// The fields of a result line from "sha256" on, without the closing brace.
absl::StatusOr<std::string> BodyOfLine(absl::string_view line) {
  const size_t at = line.find(absl::StrCat(",", kShaKey));
  if (at == absl::string_view::npos || line.size() < at + 2) {
    return absl::DataLossError(absl::StrCat("no sha256 in line ", line));
  }
  return std::string(line.substr(at + 1, line.size() - at - 2));
}

}  // namespace

ResultSink::ResultSink(SinkOptions options, LineLog log)
    : options_(std::move(options)), log_(std::move(log)) {}

absl::StatusOr<std::unique_ptr<ResultSink>> ResultSink::Open(
    const SinkOptions& options) {
  std::error_code error;
  std::filesystem::create_directories(options.dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create '", options.dir, "': ", error.message()));
  }
  std::string contents;
  absl::StatusOr<LineLog> log =
      LineLog::Open(options.dir + "/results.jsonl", &contents);
  if (!log.ok()) return log.status();
  std::unique_ptr<ResultSink> sink(new ResultSink(options, *std::move(log)));
  absl::StatusOr<std::unique_ptr<EmbeddingStore>> store =
      EmbeddingStore::Open(options.dir + "/embeddings", options.shard_rows);
  if (!store.ok()) return store.status();
  sink->store_ = *std::move(store);
  if (absl::Status s = sink->Recover(contents); !s.ok()) return s;
  if (absl::Status s = sink->store_->Reconcile(sink->done_ids_); !s.ok()) {
    return s;
  }
  return sink;
}

absl::Status ResultSink::Recover(const std::string& contents) {
  std::string kept;
  int64_t offset = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    if (line.empty()) {
      offset += 1;
      continue;
    }
    absl::StatusOr<google::protobuf::Struct> entry = ParseJsonObject(line);
    if (!entry.ok()) {
      return absl::DataLossError(absl::StrCat(options_.dir,
                                              "/results.jsonl at byte ", offset,
                                              ": ", entry.status().message()));
    }
    offset += static_cast<int64_t>(line.size()) + 1;
    ++recovered_lines_;
    const std::string id = StringField(*entry, "id");
    const std::string sha = StringField(*entry, "sha256");
    const std::string original = StringField(*entry, "duplicate_of");
    const auto& fields = entry->fields();
    // A line is kept only if what it names is on disk: its original's line
    // and its embedding rows (a power loss can lose them but keep the line).
    bool valid = original.empty() || done_ids_.contains(original);
    if (const auto it = fields.find("embeddings");
        valid && it != fields.end()) {
      valid = it->second.has_struct_value() &&
              store_->Valid(original.empty() ? id : original,
                            it->second.struct_value());
    }
    if (!valid || done_ids_.contains(id)) {
      ++dropped_lines_;
      continue;
    }
    const bool failed = fields.contains("error");
    done_ids_.insert(id);
    if (failed) failed_ids_.insert(id);
    if (!sha.empty() && !by_sha_.contains(sha)) {
      by_sha_[sha] = Location{static_cast<int64_t>(kept.size()),
                              static_cast<int64_t>(line.size())};
      original_id_[sha] = original.empty() ? id : original;
      if (failed) failed_sha_.insert(sha);
    }
    absl::StrAppend(&kept, line, "\n");
  }
  if (dropped_lines_ > 0) return log_.Rewrite(kept);
  return absl::OkStatus();
}

bool ResultSink::HasResult(const std::string& sha256) const {
  return by_sha_.contains(sha256);
}

absl::Status ResultSink::Commit(const Track& track,
                                const AnalyzedTrack& result) {
  std::string body = result.body;
  if (options_.embeddings != EmbeddingMode::kNone) {
    absl::StatusOr<std::string> refs = store_->Add(track.id, result.embeddings);
    if (!refs.ok()) return refs.status();
    absl::StrAppend(&body, ",\"embeddings\":", *refs);
  }
  return Write(track, result.sha256, body, "", /*failed=*/false);
}

absl::Status ResultSink::CommitError(const Track& track,
                                     const std::string& sha256,
                                     const absl::Status& error) {
  return Write(track, sha256, ErrorBody(sha256, error), "", /*failed=*/true);
}

absl::Status ResultSink::CommitDuplicate(const Track& track,
                                         const std::string& sha256) {
  absl::StatusOr<std::string> body = BodyOf(sha256);
  if (!body.ok()) return body.status();
  return Write(track, sha256, *body, original_id_.at(sha256),
               failed_sha_.contains(sha256));
}

absl::StatusOr<std::string> ResultSink::BodyOf(
    const std::string& sha256) const {
  const Location& location = by_sha_.at(sha256);
  absl::StatusOr<std::string> line =
      log_.ReadAt(location.offset, location.length);
  if (!line.ok()) return line.status();
  return BodyOfLine(*line);
}

absl::Status ResultSink::Write(const Track& track, const std::string& sha256,
                               const std::string& body,
                               const std::string& duplicate_of, bool failed) {
  std::string line = absl::StrCat("{\"id\":", JsonString(track.id),
                                  ",\"path\":", JsonString(track.path), ",");
  if (!duplicate_of.empty()) {
    absl::StrAppend(&line, "\"duplicate_of\":", JsonString(duplicate_of), ",");
  }
  absl::StrAppend(&line, body, "}");
  absl::StatusOr<int64_t> offset = log_.Append(line);
  if (!offset.ok()) return offset.status();
  unsynced_ = true;
  if (!sha256.empty() && !by_sha_.contains(sha256)) {
    by_sha_[sha256] = Location{*offset, static_cast<int64_t>(line.size())};
    original_id_[sha256] = track.id;
    if (failed) failed_sha_.insert(sha256);
  }
  done_ids_.insert(track.id);
  if (failed) failed_ids_.insert(track.id);
  return SyncIfDue();
}

absl::Status ResultSink::SyncIfDue() {
  if (!unsynced_ || absl::Now() - last_sync_ < options_.sync_period) {
    return absl::OkStatus();
  }
  return Sync();
}

absl::Status ResultSink::Sync() {
  last_sync_ = absl::Now();
  unsynced_ = false;
  // Rows and index lines first: a durable line must not name lost rows.
  if (absl::Status s = store_->Sync(); !s.ok()) return s;
  return log_.Sync();
}

absl::Status ResultSink::Finish() { return Sync(); }

}  // namespace audiotag::bulk
