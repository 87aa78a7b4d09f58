#ifndef AUDIOTAG_SRC_BATCHING_TASK_H_
#define AUDIOTAG_SRC_BATCHING_TASK_H_

// The unit of work schedulers queue: one segment of one request for one model,
// and the per-request control block its segments share.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/tensor.h"

namespace audiotag {

enum class Priority {
  kInteractive = 0,  // online calls: always served first
  kBulk = 1,         // catalog jobs: fill what interactive traffic leaves
};

// Shared by every segment of one request. Thread-safe.
class RequestControl {
 public:
  RequestControl(uint64_t id, Priority priority, absl::Time deadline)
      : id_(id), priority_(priority), deadline_(deadline) {}

  uint64_t id() const { return id_; }
  Priority priority() const { return priority_; }
  // absl::InfiniteFuture() when the call has no deadline.
  absl::Time deadline() const { return deadline_; }

  // The client went away: segments not yet run are dropped with CANCELLED.
  void Cancel() { cancelled_.store(true, std::memory_order_release); }
  bool cancelled() const { return cancelled_.load(std::memory_order_acquire); }

  // OK while the request may still use compute; otherwise CANCELLED or
  // DEADLINE_EXCEEDED (at `now`).
  absl::Status CheckAlive(absl::Time now) const;

 private:
  const uint64_t id_;
  const Priority priority_;
  const absl::Time deadline_;
  std::atomic<bool> cancelled_{false};
};

// What the producer of one request's segments for one model (the request's
// ModelRun) tells that model's scheduler about the segments still to come,
// so the scheduler does not launch a batch the same request would have
// filled moments later (docs/performance.md, "Batches that wait for the rest
// of a request"). A task without a feed announces nothing: its request is
// treated as complete.
//
// The producer writes `remaining`, `stalled` and Close(); the scheduler
// records arrivals (RecordArrival) under its own lock. Thread-safe.
class SegmentFeed {
 public:
  static constexpr int64_t kUnknown = -1;

  // Segments the producer will still queue after those already queued:
  // an exact count once the whole audio is known (a prebuffered file), or
  // kUnknown while a long file is still decoding. Close() sets 0.
  void SetRemaining(int64_t remaining) {
    remaining_.store(remaining, std::memory_order_release);
  }
  int64_t remaining() const {
    return remaining_.load(std::memory_order_acquire);
  }
  // No more segments will come.
  void Close() { SetRemaining(0); }
  bool open() const { return remaining() != 0; }

  // The producer cannot queue more until some of its segments finish (its
  // in-flight limit, or a full queue): waiting for it would wait for itself.
  void SetStalled(bool stalled) {
    stalled_.store(stalled, std::memory_order_release);
  }
  bool stalled() const { return stalled_.load(std::memory_order_acquire); }

  // Called by the scheduler when one of the feed's segments is queued; keeps
  // the time of the last arrival and a running mean of the gaps between
  // arrivals (the decoder's pace).
  void RecordArrival(absl::Time now);
  absl::Time last_arrival() const;
  // InfiniteDuration() before the second arrival.
  absl::Duration mean_gap() const;

 private:
  std::atomic<int64_t> remaining_{kUnknown};
  std::atomic<bool> stalled_{false};
  std::atomic<int64_t> last_arrival_ns_{0};  // absl::ToUnixNanos; 0 = none
  std::atomic<int64_t> mean_gap_ns_{-1};     // -1 = not yet measured
};

// What a segment's callback receives when the segment ran.
struct SegmentResult {
  // One tensor per model output, without the batch axis.
  std::vector<Tensor> outputs;
  absl::Duration queue_time;     // from Enqueue to the start of its batch
  absl::Duration compute_time;   // the whole batch's Run time
  absl::Duration frontend_time;  // its front-end share, if measured
  int batch_size = 0;
  // Tells apart the batches of one scheduler (a per-request sum of compute
  // counts each batch once). Starts at 1.
  uint64_t batch_id = 0;
};

struct SegmentTask {
  std::shared_ptr<RequestControl> request;
  // Position of the segment in its request's stream for this model.
  int64_t index = 0;
  // What the request announces about its segments still to come for this
  // model; shared by all of them. Optional (null: nothing announced).
  std::shared_ptr<SegmentFeed> feed;
  // One segment, no batch axis. All tasks of one scheduler share a shape.
  Tensor input;
  // Called exactly once, from a scheduler thread and outside the scheduler's
  // locks: with the outputs, or with why the segment did not run (CANCELLED,
  // DEADLINE_EXCEEDED, UNAVAILABLE at shutdown, or the runner's error).
  std::function<void(absl::StatusOr<SegmentResult>)> done;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_TASK_H_
