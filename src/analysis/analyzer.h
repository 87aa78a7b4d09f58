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

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
};

class Analyzer {
 public:
  // `repository` must outlive the Analyzer.
  Analyzer(const ModelRepository* repository, AnalyzerOptions options)
      : repository_(repository), options_(std::move(options)) {}

  // Runs the request on the calling thread (blocking until its segments have
  // run). Errors: INVALID_ARGUMENT (bad audio or options), NOT_FOUND (unknown
  // model), FAILED_PRECONDITION (model not ready, or no model ready),
  // RESOURCE_EXHAUSTED (limits, full queues), CANCELLED / DEADLINE_EXCEEDED
  // (from `control`), UNAVAILABLE (shutting down), INTERNAL (model failure).
  absl::StatusOr<v1::AnalyzeResponse> Analyze(
      absl::string_view audio, const v1::AnalyzeOptions& options,
      std::shared_ptr<RequestControl> control) const;

  const AnalyzerOptions& options() const { return options_; }

 private:
  const ModelRepository* const repository_;
  const AnalyzerOptions options_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_ANALYSIS_ANALYZER_H_
