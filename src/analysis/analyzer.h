#ifndef AUDIOTAG_SRC_ANALYSIS_ANALYZER_H_
#define AUDIOTAG_SRC_ANALYSIS_ANALYZER_H_

// The engine's entry point for one request: decodes the upload once to every
// rate the requested models need, cuts each model's stream into segments as
// the samples arrive, queues the segments on each model's scheduler (where
// they batch with every other request's), waits for their results and
// aggregates them into the response.
//
// Pipelines: the request runs the requested models and, transitively, the
// sources of the stages among them (run_plan.h), each version once per
// segment; stages are fed from their source's results (model_run.h). Only
// requested models appear in the response.
//
// Memory stays bounded for long files: each model holds at most
// `max_in_flight_segments` of a request's segments at a time; the decoder
// waits for results before it produces more.
//
// Thread-safety: Analyze may be called from many threads at once.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/audio/decoder.h"
#include "src/batching/task.h"
#include "src/model/model_repository.h"

namespace audiotag {

struct AnalyzerOptions {
  DecoderOptions decoder;
  // Most segments of one request queued or running per model. Default 64:
  // two batches of the largest usual max_batch_size, and 32 requests' worth
  // (the server's default analysis threads) fit the default queue of 4096.
  int max_in_flight_segments = 64;
  // Audio up to this long is decoded whole before its first segment is
  // queued, so each model's scheduler learns the exact segment count and
  // runs a short file in as few batches as its max_batch_size allows
  // instead of launching the first segments while the rest still decode.
  // Longer audio streams from the first second on, after this much has
  // been held. Costs up to this many seconds of PCM per rate per request
  // (30 s at 16 kHz: 1.9 MB). Default 30; 0 streams everything.
  double prebuffer_seconds = 30;
  // What a request without `models` runs (docs/api.md, "Default models").
  // Non-empty: these names, always. Empty: the models ready when the first
  // default request arrives (the server fills it with the models ready at
  // start), fixed from then on, so a model added later never joins them.
  std::vector<std::string> default_models;
};

// Where one request's time went, stage by stage (docs/performance.md). With
// several models, frontend and forward sum over them and queue is the
// longest wait.
struct StageTimes {
  // In the decoder and resampler, not counting the time the decoder waited
  // for the queue (a long file's in-flight limit).
  absl::Duration decode;
  // Of the batches the request's segments ran in, each batch counted once.
  absl::Duration frontend;
  absl::Duration forward;
  // Longest wait of one of its segments for its batch.
  absl::Duration queue;
  // Turning segment outputs into the response.
  absl::Duration aggregate;
};

// Most model names one request may carry; INVALID_ARGUMENT beyond.
inline constexpr size_t kMaxModelsPerRequest = 64;

class Analyzer {
 public:
  // `repository` must outlive the Analyzer.
  Analyzer(const ModelRepository* repository, AnalyzerOptions options)
      : repository_(repository),
        options_(std::move(options)),
        default_models_(options_.default_models) {}

  // Runs the request on the calling thread (blocking until its segments have
  // run). A request without `models` runs the default models; one of them
  // that is not ready, or whose segment is longer than the audio, is left out
  // and listed in the response's `skipped` (the call fails only when every
  // default model is left out). Errors: INVALID_ARGUMENT (bad audio or
  // options, more than kMaxModelsPerRequest names), NOT_FOUND (unknown
  // model), FAILED_PRECONDITION (model not ready, or no model ready),
  // RESOURCE_EXHAUSTED (limits, full queues), CANCELLED / DEADLINE_EXCEEDED
  // (from `control`), UNAVAILABLE (shutting down), INTERNAL (model failure).
  absl::StatusOr<v1::AnalyzeResponse> Analyze(
      absl::string_view audio, const v1::AnalyzeOptions& options,
      std::shared_ptr<RequestControl> control,
      StageTimes* stages = nullptr) const;

  const AnalyzerOptions& options() const { return options_; }

  // The names a request without `models` runs now.
  std::vector<std::string> DefaultModels() const;

 private:
  struct Selection;
  absl::StatusOr<Selection> SelectModels(
      const v1::AnalyzeOptions& options) const;

  const ModelRepository* const repository_;
  const AnalyzerOptions options_;
  mutable absl::Mutex mu_;
  // The default set once fixed (options_.default_models, or the first ready
  // set seen).
  mutable std::vector<std::string> default_models_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_ANALYSIS_ANALYZER_H_
