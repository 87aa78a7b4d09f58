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
  if (absl::Status s = sink->Recover(contents); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<EmbeddingStore>> store = EmbeddingStore::Open(
      options.dir + "/embeddings", sink->done_ids_, options.shard_rows);
  if (!store.ok()) return store.status();
  sink->store_ = *std::move(store);
  return sink;
}

absl::Status ResultSink::Recover(const std::string& contents) {
  int64_t offset = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    const int64_t length = static_cast<int64_t>(line.size()) + 1;
    if (line.empty()) {
      offset += length;
      continue;
    }
    absl::StatusOr<google::protobuf::Struct> entry = ParseJsonObject(line);
    if (!entry.ok()) {
      return absl::DataLossError(absl::StrCat(options_.dir,
                                              "/results.jsonl at byte ", offset,
                                              ": ", entry.status().message()));
    }
    const std::string id = StringField(*entry, "id");
    const std::string sha = StringField(*entry, "sha256");
    done_ids_.insert(id);
    ++recovered_lines_;
    if (!sha.empty() && !by_sha_.contains(sha)) {
      by_sha_[sha] = Location{offset, length - 1, ""};
      const std::string original = StringField(*entry, "duplicate_of");
      original_id_[sha] = original.empty() ? id : original;
    }
    offset += length;
  }
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
  return Enqueue(track, result.sha256, std::move(body), "");
}

absl::Status ResultSink::CommitError(const Track& track,
                                     const std::string& sha256,
                                     const absl::Status& error) {
  return Enqueue(track, sha256, ErrorBody(sha256, error), "");
}

absl::Status ResultSink::CommitDuplicate(const Track& track,
                                         const std::string& sha256) {
  absl::StatusOr<std::string> body = BodyOf(sha256);
  if (!body.ok()) return body.status();
  return Enqueue(track, sha256, *std::move(body), original_id_.at(sha256));
}

absl::StatusOr<std::string> ResultSink::BodyOf(
    const std::string& sha256) const {
  const Location& location = by_sha_.at(sha256);
  if (location.offset < 0) return location.body;
  absl::StatusOr<std::string> line =
      log_.ReadAt(location.offset, location.length);
  if (!line.ok()) return line.status();
  return BodyOfLine(*line);
}

absl::Status ResultSink::Enqueue(const Track& track, const std::string& sha256,
                                 std::string body,
                                 const std::string& duplicate_of) {
  std::string line = absl::StrCat("{\"id\":", JsonString(track.id),
                                  ",\"path\":", JsonString(track.path), ",");
  if (!duplicate_of.empty()) {
    absl::StrAppend(&line, "\"duplicate_of\":", JsonString(duplicate_of), ",");
  }
  absl::StrAppend(&line, body, "}");
  Pending pending{std::move(line), ""};
  if (!sha256.empty() && !by_sha_.contains(sha256)) {
    by_sha_[sha256] = Location{-1, 0, std::move(body)};
    original_id_[sha256] = track.id;
    pending.sha256 = sha256;
  }
  pending_.push_back(std::move(pending));
  done_ids_.insert(track.id);
  if (options_.embeddings == EmbeddingMode::kNone) return Flush();
  return FlushIfDue();
}

absl::Status ResultSink::FlushIfDue() {
  if (store_->ShardFull() ||
      absl::Now() - last_flush_ >= options_.flush_period) {
    return Flush();
  }
  return absl::OkStatus();
}

absl::Status ResultSink::Flush() {
  last_flush_ = absl::Now();
  // Rows first: a line must never name rows that a crash could lose.
  if (absl::Status s = store_->Flush(); !s.ok()) return s;
  for (Pending& pending : pending_) {
    absl::StatusOr<int64_t> offset = log_.Append(pending.line);
    if (!offset.ok()) return offset.status();
    if (!pending.sha256.empty()) {
      by_sha_[pending.sha256] =
          Location{*offset, static_cast<int64_t>(pending.line.size()), ""};
    }
  }
  pending_.clear();
  if (absl::Now() - last_sync_ >= options_.sync_period) {
    last_sync_ = absl::Now();
    return log_.Sync();
  }
  return absl::OkStatus();
}

absl::Status ResultSink::Finish() {
  if (absl::Status s = Flush(); !s.ok()) return s;
  return log_.Sync();
}

}  // namespace audiotag::bulk
