#ifndef AUDIOTAG_TESTS_ANALYSIS_FAKE_SCHEDULER_H_
#define AUDIOTAG_TESTS_ANALYSIS_FAKE_SCHEDULER_H_

// A Scheduler (src/batching/scheduler.h) for the orchestration tests
// (ModelRun, Analyzer), so that they need no model: it holds the segments it
// is given until the test runs them (or runs them itself, in auto mode), can
// refuse the next few Enqueue calls, and records what it saw.
//
// A held segment runs the way the dynamic batcher runs one: with the error
// the test set for its index (FailSegment: what its runner returned, even if
// the request was cancelled meanwhile), else with CANCELLED or
// DEADLINE_EXCEEDED when its request is no longer alive, else with the
// outputs of set_outputs (default: one output of shape [2], {segment index,
// first input sample}).
//
// Thread-safety: thread-safe. Segments are answered from the thread that
// calls RunHeld/RunAll (or the auto-mode thread), outside the lock.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/batching/scheduler.h"
#include "src/model/model.h"

namespace audiotag::testing {

// How long a test waits for something that must happen; only reached when
// the test fails.
inline constexpr absl::Duration kWaitLimit = absl::Seconds(60);

class FakeScheduler : public Scheduler {
 public:
  using Outputs = std::function<std::vector<Tensor>(const SegmentTask&)>;

  // `auto_run`: a thread of its own answers every segment as it arrives.
  explicit FakeScheduler(bool auto_run = false);
  ~FakeScheduler() override;

  absl::Status Enqueue(std::unique_ptr<SegmentTask> task) override;
  // Answers every held segment UNAVAILABLE and refuses new ones.
  void Stop() override;
  void Wake() override;
  int64_t queue_depth() const override;

  // --- What the test sets up.
  void set_outputs(Outputs outputs);
  // The next `count` Enqueue calls fail with `status` (the task destroyed,
  // its callback not called).
  void RefuseNext(int count, absl::Status status);
  // The segment with this index fails with `status` when it runs.
  void FailSegment(int64_t index, absl::Status status);

  // --- Running held segments (manual mode).
  // Runs the held segments at these positions in the hold (0 = oldest).
  void RunHeld(std::vector<int> positions);
  // Runs the `count` oldest held segments.
  void RunOldest(int count);
  // Runs every held segment.
  void RunAll();

  // --- What it saw. The Await* calls return false after kWaitLimit.
  bool AwaitHeld(int count);
  bool AwaitRefused(int count);
  // A held segment's feed (SegmentFeed) says the producer is stalled.
  bool AwaitStalled();
  int held() const;
  int max_held() const;
  int accepted() const;
  int refused() const;
  int wakes() const;
  // Per accepted segment, in arrival order: what its feed announced
  // (SegmentFeed::remaining) when it arrived; kNoFeed without a feed.
  static constexpr int64_t kNoFeed = -2;
  std::vector<int64_t> remaining_at_enqueue() const;
  // Indices of the held segments, oldest first.
  std::vector<int64_t> held_indices() const;

 private:
  void Answer(std::unique_ptr<SegmentTask> task) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::unique_ptr<SegmentTask>> Take(std::vector<int> positions)
      ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<SegmentTask>> held_ ABSL_GUARDED_BY(mu_);
  Outputs outputs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  int refuse_count_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status refuse_status_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  int max_held_ ABSL_GUARDED_BY(mu_) = 0;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
  int refused_ ABSL_GUARDED_BY(mu_) = 0;
  int wakes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> remaining_at_enqueue_ ABSL_GUARDED_BY(mu_);
  const bool auto_run_;
  std::thread runner_;
};

// A normalized config for a 16 kHz waveform model with `window` samples per
// segment (hop = window), LAST_SEGMENT_PAD, and one EMBEDDING output "e" of
// dim 2 (what FakeScheduler outputs by default).
v1::ModelConfig FakeModelConfig(const std::string& name, int64_t window);

// A model served by a FakeScheduler; `*scheduler` is set to it (owned by the
// model).
std::shared_ptr<const Model> MakeFakeModel(const v1::ModelConfig& config,
                                           bool auto_run,
                                           FakeScheduler** scheduler);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_ANALYSIS_FAKE_SCHEDULER_H_
