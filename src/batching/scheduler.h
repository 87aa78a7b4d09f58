#ifndef AUDIOTAG_SRC_BATCHING_SCHEDULER_H_
#define AUDIOTAG_SRC_BATCHING_SCHEDULER_H_

// A Scheduler takes segments from many requests for one model and runs them
// on the model's instances in batches. CreateScheduler
// (scheduler_factory.h) picks the implementation a model's config asks for;
// today that is always the dynamic batcher (dynamic_batcher.h).
//
// Thread-safety: all methods may be called from any thread.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/batching/task.h"

namespace audiotag {

// What happened in one batch, as every Scheduler reports it to its observer.
struct BatchStats {
  int batch_size = 0;            // segments in the batch
  int instance = 0;              // the instance that ran it, 0-based
  uint64_t batch_id = 0;         // 1, 2, ... per scheduler
  absl::Duration compute_time;   // the runner's whole Run
  absl::Duration frontend_time;  // the front-end's share of it, if measured
  std::vector<absl::Duration> queue_times;  // one per segment in the batch
};

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
