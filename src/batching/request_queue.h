#ifndef AUDIOTAG_SRC_BATCHING_REQUEST_QUEUE_H_
#define AUDIOTAG_SRC_BATCHING_REQUEST_QUEUE_H_

// The waiting room of the dynamic batcher: segments grouped by priority class
// and, within a class, by request. PopBatch takes segments of one class only,
// interactive while any wait, and within it one segment per request in turn
// (round-robin), so a request with thousands of queued segments cannot starve
// a short request queued after it. The turn order persists across batches.
// A batch never mixes classes: topping up an interactive batch with bulk
// segments would make the interactive request wait for their compute.
//
// Requests are keyed by RequestControl::id(), which must be unique among the
// requests in flight; the first segment's control block stands for its
// request while the request has segments queued.
//
// Thread-safety: not thread-safe; the owner (DynamicBatcher) guards it with
// its mutex. Ownership: the queue owns the tasks it holds and hands them back
// by value from PopBatch and RemoveDead. It never calls a task's `done`.

#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/batching/task.h"

namespace audiotag {

class RequestQueue {
 public:
  // A waiting segment and when it was queued.
  struct Entry {
    std::unique_ptr<SegmentTask> task;
    absl::Time enqueue_time;
  };
  // A segment removed without running, and why (CANCELLED or
  // DEADLINE_EXCEEDED).
  struct Dropped {
    std::unique_ptr<SegmentTask> task;
    absl::Status status;
  };

  // `task` and `task->request` must not be null.
  void Push(std::unique_ptr<SegmentTask> task, absl::Time enqueue_time);

  // Segments waiting, over both classes.
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Segments waiting in one class.
  int64_t size(Priority priority) const {
    return classes_[static_cast<int>(priority)].size;
  }
  // The class PopBatch takes from next: interactive if any wait, else bulk.
  Priority NextClass() const {
    return size(Priority::kInteractive) > 0 ? Priority::kInteractive
                                            : Priority::kBulk;
  }

  // When the oldest waiting segment of `priority` was queued;
  // InfiniteFuture() if none waits.
  absl::Time OldestEnqueueTime(Priority priority) const;
  // The same for the request whose turn is next in `priority` (the one a
  // one-request batch would take), and how many segments it has waiting.
  absl::Time NextRequestOldestEnqueueTime(Priority priority) const;
  int64_t NextRequestSize(Priority priority) const;

  // Segments still to come that requests with segments waiting in
  // `priority` have announced through their feeds (SegmentTask::feed), up to
  // `wanted` in all; only the next request's when `next_request_only`.
  // Feeds that are closed or stalled count nothing. `eta`: when the last of
  // them is expected, from each feed's last arrival and mean gap (a feed
  // with one arrival so far is taken to be pushing now). `exact`: every
  // counted feed announced an exact count (its audio is fully decoded).
  struct Expected {
    int64_t segments = 0;
    absl::Time eta = absl::InfinitePast();
    bool exact = true;
  };
  Expected ExpectedArrivals(Priority priority, int64_t wanted,
                            bool next_request_only) const;

  // The earliest deadline of a request with waiting segments;
  // InfiniteFuture() if none.
  absl::Time EarliestDeadline() const;

  // Removes every segment of a request that is cancelled or past its
  // deadline at `now`, appending them to `dropped`.
  void RemoveDead(absl::Time now, std::vector<Dropped>* dropped);

  // Removes and returns up to `max_size` segments of NextClass(),
  // round-robin over its requests; with `one_request`, only segments of the
  // request whose turn is next (the per-request baseline), which then goes
  // to the back of the turn order if it has segments left.
  std::vector<Entry> PopBatch(int max_size, bool one_request = false);

 private:
  struct PerRequest {
    std::shared_ptr<RequestControl> control;
    // The first feed any of its waiting segments carried; may be null.
    std::shared_ptr<SegmentFeed> feed;
    std::deque<Entry> segments;
  };
  // One priority class: its requests and whose turn is next. Each id with
  // queued segments appears once in `turns`.
  struct ClassQueue {
    std::unordered_map<uint64_t, PerRequest> requests;
    std::deque<uint64_t> turns;
    int64_t size = 0;  // segments over all its requests
  };

  static constexpr int kNumClasses = 2;

  const PerRequest* NextRequest(Priority priority) const;

  // Both return how many segments they removed and keep queue.size.
  static int64_t PopFrom(ClassQueue& queue, int max_size, bool one_request,
                         std::vector<Entry>* batch);
  static int64_t RemoveDeadFrom(ClassQueue& queue, absl::Time now,
                                std::vector<Dropped>* dropped);

  ClassQueue classes_[kNumClasses];  // indexed by Priority
  int64_t size_ = 0;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_REQUEST_QUEUE_H_
