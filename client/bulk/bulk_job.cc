#include "client/bulk/bulk_job.h"

#include <algorithm>
#include <thread>

#include "client/bulk/progress.h"
#include "client/bulk/sha256.h"

namespace audiotag::bulk {

BulkJob::BulkJob(JobOptions options, ServerPool* servers,
                 v1::AnalyzeOptions request)
    : options_(std::move(options)),
      servers_(servers),
      request_(std::move(request)) {}

absl::StatusOr<JobStats> BulkJob::Run(const std::vector<Track>& tracks) {
  std::vector<const Track*> todo;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<std::unique_ptr<ResultSink>> sink =
        ResultSink::Open(options_.sink);
    if (!sink.ok()) return sink.status();
    sink_ = *std::move(sink);
    stats_.total = static_cast<int64_t>(tracks.size());
    for (const Track& track : tracks) {
      if (sink_->Done(track.id)) {
        ++stats_.skipped;
        if (sink_->Failed(track.id)) ++stats_.skipped_failed;
      } else {
        todo.push_back(&track);
      }
    }
  }
  Progress progress([this] { return ProgressLine(Snapshot()); },
                    options_.progress_terminal, options_.progress_period);
  progress.Start();
  // Lines written while no other track finishes still become durable within
  // about a sync period.
  std::thread syncer([this] { SyncLoop(); });
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, options_.concurrency); ++i) {
    workers.emplace_back([this, &todo] { Work(todo); });
  }
  for (std::thread& worker : workers) worker.join();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  syncer.join();
  progress.Stop();
  absl::MutexLock lock(&mu_);
  Record(sink_->Finish());
  if (!write_error_.ok()) return write_error_;
  stats_.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  return stats_;
}

JobStats BulkJob::Snapshot() {
  absl::MutexLock lock(&mu_);
  JobStats stats = stats_;
  stats.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  return stats;
}

void BulkJob::SyncLoop() {
  const absl::Duration tick =
      std::clamp(options_.sink.sync_period / 4, absl::Milliseconds(10),
                 absl::Milliseconds(250));
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick);
    if (!stopping_) Record(sink_->SyncIfDue());
  }
}

void BulkJob::Record(absl::Status status) {
  if (write_error_.ok()) write_error_ = std::move(status);
}

void BulkJob::Work(const std::vector<const Track*>& todo) {
  for (size_t i = next_++; i < todo.size(); i = next_++) {
    {
      absl::MutexLock lock(&mu_);
      if (!write_error_.ok()) return;
    }
    Process(*todo[i]);
  }
}

void BulkJob::Process(const Track& track) {
  absl::StatusOr<std::string> audio = ReadFile(track.path);
  if (!audio.ok()) {
    Finish(track, "", audio.status());
    return;
  }
  const std::string sha256 = Sha256Hex(*audio);
  if (Claim(track, sha256)) Analyze(track, sha256, *audio);
}

bool BulkJob::Claim(const Track& track, const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  if (sink_->HasResult(sha256)) {
    Record(sink_->CommitDuplicate(track, sha256));
    ++stats_.duplicates;
    if (sink_->Failed(track.id)) ++stats_.duplicate_failed;
    return false;
  }
  auto [it, fresh] = in_flight_.try_emplace(sha256);
  if (!fresh) it->second.push_back(track);
  return fresh;
}

void BulkJob::Analyze(const Track& track, const std::string& sha256,
                      const std::string& audio) {
  const EmbeddingMode mode = options_.sink.embeddings;
  v1::AnalyzeOptions request = request_;
  if (request.request_id().empty()) request.set_request_id(track.id);
  absl::StatusOr<AnalyzedTrack> result;
  CallTiming timing;
  const absl::Status status = CallWithRetries(
      options_.retry,
      [&] {
        // CallWithRetries counts the attempt before making it, so
        // `timing.attempts` is current here.
        const absl::Time start = absl::Now();
        absl::StatusOr<v1::AnalyzeResponse> response =
            servers_->Analyze(audio, request);
        if (!response.ok()) return response.status();
        timing.client_seconds = absl::ToDoubleSeconds(absl::Now() - start);
        result = FromResponse(sha256, *response, mode, timing);
        return absl::OkStatus();
      },
      &timing.attempts);
  if (!status.ok()) result = status;
  {
    absl::MutexLock lock(&mu_);
    stats_.retries += timing.attempts - 1;
  }
  Finish(track, sha256, result);
}

void BulkJob::Finish(const Track& track, const std::string& sha256,
                     const absl::StatusOr<AnalyzedTrack>& result) {
  absl::MutexLock lock(&mu_);
  std::vector<Track> twins;
  if (auto it = in_flight_.find(sha256); it != in_flight_.end()) {
    twins = std::move(it->second);
    in_flight_.erase(it);
  }
  const absl::Status status = result.status();
  const std::string code = absl::StatusCodeToString(status.code());
  if (!status.ok() && IsRetryable(status.code())) {
    stats_.retryable_failures[code] += 1 + static_cast<int64_t>(twins.size());
    return;
  }
  absl::Status written = result.ok()
                             ? sink_->Commit(track, *result)
                             : sink_->CommitError(track, sha256, status);
  if (!written.ok() &&
      written.code() == absl::StatusCode::kFailedPrecondition) {
    written = sink_->CommitError(track, sha256, written);
  }
  Record(written);
  if (result.ok()) {
    ++stats_.analyzed;
    stats_.audio_seconds += result->duration_seconds;
  } else {
    ++stats_.errors[code];
  }
  for (const Track& twin : twins) {
    Record(sink_->CommitDuplicate(twin, sha256));
    ++stats_.duplicates;
    if (sink_->Failed(twin.id)) ++stats_.duplicate_failed;
  }
}

}  // namespace audiotag::bulk
