#ifndef AUDIOTAG_SRC_BATCHING_SCHEDULER_H_
#define AUDIOTAG_SRC_BATCHING_SCHEDULER_H_

// A Scheduler takes segments from many requests for one model and runs them
// on the model's instances in batches. The dynamic batcher
// (dynamic_batcher.h) is the implementation the server uses.
//
// Thread-safety: all methods may be called from any thread.

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "src/batching/task.h"

namespace audiotag {

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Queues `task`. On OK the scheduler owns it and will call task->done
  // exactly once. On error the task is destroyed without its callback being
  // called, and the caller still owns the request: RESOURCE_EXHAUSTED when
  // the queue is full, UNAVAILABLE after Stop(), INVALID_ARGUMENT when the
  // input's shape is not the model's.
  virtual absl::Status Enqueue(std::unique_ptr<SegmentTask> task) = 0;

  // Stops accepting work, runs what is already queued, and joins the
  // instance threads. Idempotent. The destructor calls it.
  virtual void Stop() = 0;

  // Re-plans at once: a producer calls it after closing or stalling a
  // SegmentFeed (task.h), so that a batch held for that feed's segments
  // launches now instead of at the end of its hold.
  virtual void Wake() {}

  // Segments waiting (not yet in a running batch).
  virtual int64_t queue_depth() const = 0;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_SCHEDULER_H_
