#ifndef AUDIOTAG_SRC_BATCHING_DYNAMIC_BATCHER_H_
#define AUDIOTAG_SRC_BATCHING_DYNAMIC_BATCHER_H_

// The dynamic batcher: segments from every in-flight request for one model
// wait in one queue shared by the model's instances; each instance thread
// takes the next batch when it reaches max_batch_size (or a preferred size),
// or when its oldest segment has waited max_queue_delay. Interactive segments
// go before bulk ones, a batch never mixes the two, and bulk batches shrink
// while interactive traffic is live; within a class, requests are served
// round-robin so one long request cannot starve short ones behind it. Segments
// of cancelled or expired requests are dropped before they reach a batch.
//
// A batch that max_queue_delay would launch is held a little longer when the
// requests waiting in it have announced more segments that are about to
// arrive and fit (SegmentFeed in task.h): a request whose decode is still
// feeding the queue then runs in one batch instead of two. The hold ends
// when the batch is full, when no feed expects more (closed or stalled), or
// at its budget. Feeds with an exact count (the audio is decoded; only the
// copying into the queue is left) are waited for until their last segment
// arrives, with max_arrival_wait as a guard against a starved producer.
// Feeds still decoding are waited for only if the decoder's pace brings the
// missing segments within the smaller of max_arrival_wait and the fixed cost
// of a forward measured on this model (the intercept of forward time against
// batch size). A segment whose request announced nothing never waits past
// max_queue_delay. docs/performance.md explains the rule.
//
// Thread-safety: thread-safe.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/batching/batch_runner.h"
#include "src/batching/scheduler.h"

namespace audiotag {

struct BatcherOptions {
  // Used in thread names and log lines.
  std::string name;
  // Most segments per batch. Default 8; at least 1.
  int max_batch_size = 8;
  // Sizes that run as soon as they are reached, ascending, each at most
  // max_batch_size. Default none.
  std::vector<int> preferred_batch_sizes;
  // How long the oldest waiting segment may wait for a fuller batch.
  // Default 2 ms.
  absl::Duration max_queue_delay = absl::Microseconds(2000);
  // Most waiting segments; Enqueue beyond it is RESOURCE_EXHAUSTED.
  // Default 4096.
  int max_queue_size = 4096;
  // While interactive traffic is live (an interactive segment was queued
  // within the last `interactive_window`), a batch of bulk segments holds at
  // most this many, so that an interactive request arriving meanwhile waits
  // behind a short batch rather than a full one. 0 (default): no cap.
  int bulk_batch_size_under_interactive = 0;
  absl::Duration interactive_window = absl::Seconds(10);
  // The longest a batch ready by max_queue_delay is held for segments its
  // requests announced (see above). Default 20 ms; 0 turns holding off.
  absl::Duration max_arrival_wait = absl::Milliseconds(20);
  // Batches never mix requests: each takes the segments of the request
  // whose turn is next (round-robin across requests). What a server without
  // cross-request batching does; the baseline of scripts/run-benchmarks.sh.
  // Default false.
  bool per_request = false;
  // Shape every task's input must have (no batch axis); empty = not checked.
  std::vector<int64_t> input_shape;
  // Called after every batch from the instance thread that ran it; must be
  // cheap and thread-safe. Optional.
  std::function<void(const BatchStats&)> on_batch;
};

class DynamicBatcher : public Scheduler {
 public:
  // One thread per runner; `runners` must not be empty.
  static absl::StatusOr<std::unique_ptr<DynamicBatcher>> Create(
      BatcherOptions options,
      std::vector<std::unique_ptr<BatchRunner>> runners);
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_DYNAMIC_BATCHER_H_
