#ifndef AUDIOTAG_SRC_ANALYSIS_MODEL_RUN_H_
#define AUDIOTAG_SRC_ANALYSIS_MODEL_RUN_H_

// One model's share of one request: segments the model's sample stream,
// queues each segment on the model's scheduler with at most `max_in_flight`
// outstanding, and collects the results in segment order.
//
// Thread-safety: Push/Finish/Result are called from the request's thread;
// the scheduler's callbacks arrive on its threads. The destructor waits
// until every queued segment has called back, so callbacks never outlive it.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/analysis/aggregator.h"
#include "src/batching/task.h"
#include "src/features/segmenter.h"
#include "src/model/model.h"

namespace audiotag {

class ModelRun {
 public:
  ModelRun(std::shared_ptr<const Model> model,
           std::shared_ptr<RequestControl> control, int max_in_flight);
  ~ModelRun();

  ModelRun(const ModelRun&) = delete;
  ModelRun& operator=(const ModelRun&) = delete;

  const Model& model() const { return *model_; }

  // Feeds the next decoded samples at the model's rate. Blocks while
  // `max_in_flight` segments are outstanding. Returns the first error of
  // this run (or the request's cancellation).
  absl::Status Push(absl::Span<const float> samples);

  // Ends the stream and waits for every segment's result.
  absl::Status Finish();

  // Waits for the segments queued so far; returns this run's first error.
  absl::Status Wait();

  // After a successful Finish.
  absl::StatusOr<v1::ModelResult> Result(
      const AggregationOptions& options) const;

  // Longest queue wait and summed batch compute time of this run's segments.
  absl::Duration max_queue_time() const;
  absl::Duration compute_time() const;

 private:
  absl::Status EnqueueSegment(int64_t index, int64_t start,
                              absl::Span<const float> samples, int64_t valid);
  void OnDone(int64_t index, absl::StatusOr<SegmentResult> result);
  bool Drained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  }

  const std::shared_ptr<const Model> model_;
  const std::shared_ptr<RequestControl> control_;
  const int max_in_flight_;
  Segmenter segmenter_;

  mutable absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<SegmentSpan> spans_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<Tensor>> outputs_ ABSL_GUARDED_BY(mu_);
  absl::Duration max_queue_time_ ABSL_GUARDED_BY(mu_);
  absl::Duration compute_time_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_ANALYSIS_MODEL_RUN_H_
