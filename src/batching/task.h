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

// What a segment's callback receives when the segment ran.
struct SegmentResult {
  // One tensor per model output, without the batch axis.
  std::vector<Tensor> outputs;
  absl::Duration queue_time;    // from Enqueue to the start of its batch
  absl::Duration compute_time;  // the whole batch's Run time
  int batch_size = 0;
};

struct SegmentTask {
  std::shared_ptr<RequestControl> request;
  // Position of the segment in its request's stream for this model.
  int64_t index = 0;
  // One segment, no batch axis. All tasks of one scheduler share a shape.
  Tensor input;
  // Called exactly once, from a scheduler thread and outside the scheduler's
  // locks: with the outputs, or with why the segment did not run (CANCELLED,
  // DEADLINE_EXCEEDED, UNAVAILABLE at shutdown, or the runner's error).
  std::function<void(absl::StatusOr<SegmentResult>)> done;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_TASK_H_
