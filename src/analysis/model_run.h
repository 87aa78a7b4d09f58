#ifndef AUDIOTAG_SRC_ANALYSIS_MODEL_RUN_H_
#define AUDIOTAG_SRC_ANALYSIS_MODEL_RUN_H_

// One model's share of one request: segments the model's sample stream,
// queues each segment on the model's scheduler with at most `max_in_flight`
// outstanding, and collects the results in segment order.
//
// Pipelines: a run of a stage model (Model::is_stage) has no audio of its
// own. Its source's run hands it each segment's source output from the
// source's completion callback (AddDependent); the stage queues it on its own
// scheduler without blocking, so stage segments batch across requests too. A
// root segment counts as in flight until every stage downstream of it has
// finished with it, so `max_in_flight` bounds the whole pipeline.
//
// A stage with several sources (input.from_models) joins them: each source's
// run hands it that source's vector per segment, and the stage queues one
// segment per primary segment once every other source's segment nearest it
// in time has arrived (the rule in model_config.proto, ModelInputs). A
// source learns how many segments it makes when its stream ends and passes
// the count down (OnSourceTotal), so the last primary segments know which
// segment of another source is its last. The stage keeps its own copy of
// what it still needs and frees each source's in-flight slot at once (a
// source with a long window may need many primary segments' worth of audio
// before it answers); its own queue limit bounds what it holds.
//
// Announcing: an audio run shares a SegmentFeed (task.h) with its queued
// segments. While the request decodes, the feed says more are coming (count
// unknown); PushWhole, for audio decoded whole, announces the exact count;
// Finish closes it. The feed is stalled while the run waits for its
// in-flight limit, so the scheduler never holds a batch for segments that
// wait on that batch.
//
// Thread-safety: Push/Finish/Wait/Result are called from the request's
// thread; the scheduler's callbacks arrive on its threads. The destructor
// waits until every queued segment has called back, so callbacks never
// outlive it. A source run must be destroyed after its dependents have
// drained (the Analyzer waits for every run before destroying any).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/analysis/aggregator.h"
#include "src/batching/task.h"
#include "src/common/segment_grid.h"
#include "src/features/segmenter.h"
#include "src/model/model.h"

namespace audiotag {

class ModelRun {
 public:
  // `collect`: keep each segment's outputs for Result (false for a source
  // that only feeds stages).
  ModelRun(std::shared_ptr<const Model> model,
           std::shared_ptr<RequestControl> control, int max_in_flight,
           bool collect = true);
  ~ModelRun();

  ModelRun(const ModelRun&) = delete;
  ModelRun& operator=(const ModelRun&) = delete;

  const Model& model() const { return *model_; }

  // Feeds every segment result of this run to `stage`, a run of a stage
  // whose source number `slot` (StageSources order) is this run's model.
  // Call before the first Push. `stage` must outlive this run's callbacks.
  void AddDependent(ModelRun* stage, int slot = 0);

  // Gives up on the segments a stage with several sources holds back for a
  // source that will not deliver (the request failed): frees them, so Wait
  // returns. Call after the request is cancelled.
  void Abandon();

  // Feeds the next decoded samples at the model's rate (audio models only).
  // Blocks while
  // `max_in_flight` segments are outstanding. Returns the first error of
  // this run (or the request's cancellation).
  absl::Status Push(absl::Span<const float> samples);

  // Push for a stream that `samples` holds entirely (the decoder finished):
  // first announces how many segments the stream makes, so the scheduler
  // waits for all of them (up to a batch) rather than launching the first
  // few alone, then queues them all, the last (padded) one included, and
  // closes the feed. Call once, instead of Push, then Finish.
  absl::Status PushWhole(absl::Span<const float> samples);

  // Ends the stream and waits for every segment's result, including the
  // results of the stages downstream (audio models only).
  absl::Status Finish();

  // Waits for the segments queued so far; returns this run's first error.
  absl::Status Wait();

  // After a successful Finish.
  absl::StatusOr<v1::ModelResult> Result(
      const AggregationOptions& options) const;

  // The front-end and forward (compute less front-end) time of the batches
  // this run's segments ran in, each batch counted once.
  absl::Duration frontend_time() const;
  absl::Duration forward_time() const;

  // Longest queue wait of this run's segments, and their share of compute:
  // per segment, its batch's forward time divided by the batch's size.
  absl::Duration max_queue_time() const;
  absl::Duration compute_time() const;
  // Segments queued so far (0 when the audio was shorter than one segment).
  int64_t segment_count() const;

 private:
  // Called once per segment when this run and every stage downstream are
  // done with it; frees the segment's in-flight slot up the chain.
  using Release = std::function<void()>;

  absl::Status EnqueueSegment(int64_t index, int64_t start,
                              absl::Span<const float> samples, int64_t valid);
  // Stage side: queues one output of source `slot`; never blocks. Errors
  // fail the request (recorded, and `release` called).
  void EnqueueFromSource(int slot, int64_t index, SegmentSpan span,
                         Tensor input, Release release);
  // Stage side: source `slot` makes `total` segments in all.
  void OnSourceTotal(int slot, int64_t total);

  // A stage with several sources (input.from_models).
  struct JoinInput {
    SegmentGrid grid;
    int64_t dim = 0;
    std::string source;  // "output 'o' of model 'm'", for errors
    // Arrived and maybe still needed (non-primary sources).
    std::map<int64_t, Tensor> segments;
    int64_t total = -1;  // segments the source makes, once known
    int64_t max_arrived = -1;
    int64_t freed_below = 0;  // segments below this are needed no more
  };
  struct JoinReady {
    int64_t index = 0;
    Tensor input;
  };
  struct Join {
    std::vector<JoinInput> inputs;  // [0] is the primary
    int64_t total_dim = 0;
    // Primary segments waiting for the other sources, with their spans.
    std::map<int64_t, std::pair<SegmentSpan, Tensor>> parked;
    // Primary arrivals: every index below next_unseen, and those in ahead.
    int64_t next_unseen = 0;
    std::set<int64_t> ahead;
    // After a failure: arrivals are dropped.
    bool closed = false;
  };
  // The source segment of `input` nearest (by window centre) the primary's
  // segment `index`.
  static int64_t Nearest(const Join& join, const JoinInput& input,
                         int64_t index);
  void JoinArrival(int slot, int64_t index, SegmentSpan span, Tensor input)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Moves the parked segments whose sources have all arrived to `ready`
  // (their spans recorded) and frees source segments no longer needed.
  void TakeReady(std::vector<JoinReady>* ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops every parked segment (their in-flight counts too) and closes.
  void CloseJoin() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueReady(std::vector<JoinReady> ready) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues one stage segment; if the scheduler refuses it, fails the run
  // with the scheduler's code and calls `release` (the task never will).
  void EnqueueStageSegment(int64_t index, Tensor input, const Release& release)
      ABSL_LOCKS_EXCLUDED(mu_);
  // True once (the caller then passes total_ on) when every segment of a
  // known total has called back.
  bool TakeTotalReached() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyTotal(int64_t total) ABSL_LOCKS_EXCLUDED(mu_);
  std::unique_ptr<SegmentTask> MakeTask(int64_t index, Tensor input,
                                        Release release);
  void OnDone(int64_t index, const Release& release,
              absl::StatusOr<SegmentResult> result);
  void Fail(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for an in-flight slot (or an error), marking the feed stalled
  // meanwhile.
  void AwaitRoom() ABSL_LOCKS_EXCLUDED(mu_);
  // No more segments: tells the scheduler, so nothing waits for them.
  void CloseFeed();
  // Emits the stream's last segments (once) and closes the feed.
  absl::Status FinishSegmenter();
  void ReleaseSlot() ABSL_LOCKS_EXCLUDED(mu_);
  bool Drained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  }

  const std::shared_ptr<const Model> model_;
  const std::shared_ptr<RequestControl> control_;
  const int max_in_flight_;
  const bool collect_;
  Segmenter segmenter_;
  // Null for stages (their segments come from their source's results).
  const std::shared_ptr<SegmentFeed> feed_;
  // Segments the stream makes, once known (PushWhole); -1 before. Request
  // thread only.
  int64_t expected_segments_ = -1;
  // The segmenter's Finish has run (PushWhole). Request thread only.
  bool segmenter_finished_ = false;
  // Set before the first segment; read-only afterwards.
  struct Dependent {
    ModelRun* run;
    int slot;    // which of its sources this run is
    int output;  // the output of this run's model it takes
  };
  std::vector<Dependent> dependents_;

  mutable absl::Mutex mu_;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<SegmentSpan> spans_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<Tensor>> outputs_ ABSL_GUARDED_BY(mu_);
  absl::Duration max_queue_time_ ABSL_GUARDED_BY(mu_);
  absl::Duration compute_time_ ABSL_GUARDED_BY(mu_);
  absl::Duration frontend_time_ ABSL_GUARDED_BY(mu_);
  absl::Duration forward_time_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<uint64_t> batches_seen_ ABSL_GUARDED_BY(mu_);
  // Segments this run makes (audio: when the stream ends; stage: its
  // primary source's), -1 until known; segments called back so far.
  int64_t total_ ABSL_GUARDED_BY(mu_) = -1;
  int64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  bool total_notified_ ABSL_GUARDED_BY(mu_) = false;
  // Null unless the model is a stage with several sources.
  std::unique_ptr<Join> join_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_ANALYSIS_MODEL_RUN_H_
