#ifndef AUDIOTAG_TESTS_BATCHING_RESULT_COLLECTOR_H_
#define AUDIOTAG_TESTS_BATCHING_RESULT_COLLECTOR_H_

// Makes SegmentTasks whose callbacks record what they received, so tests can
// wait for callbacks and check each was called exactly once.
//
// Thread-safety: thread-safe. Tasks refer to the collector, which must
// outlive the scheduler that runs them (declare it before the scheduler).

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/batching/task.h"

namespace audiotag::testing {

class ResultCollector {
 public:
  using Key = std::pair<uint64_t, int64_t>;  // request id, segment index

  // A task for segment `index` of `request`, its input a Segment() tagged
  // with Tag(request->id(), index).
  std::unique_ptr<SegmentTask> MakeTask(std::shared_ptr<RequestControl> request,
                                        int64_t index) ABSL_LOCKS_EXCLUDED(mu_);

  // True once `count` callbacks have been called in all.
  bool WaitForCalls(int count) ABSL_LOCKS_EXCLUDED(mu_);

  int total_calls() const ABSL_LOCKS_EXCLUDED(mu_);
  // How often the callback of (id, index) was called.
  int calls(uint64_t id, int64_t index) const ABSL_LOCKS_EXCLUDED(mu_);
  // The last result (id, index) received; NOT_FOUND if none.
  absl::StatusOr<SegmentResult> result(uint64_t id, int64_t index) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // Callbacks in the order they were called.
  std::vector<Key> order() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Record(Key key, absl::StatusOr<SegmentResult> result)
      ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::map<Key, int> calls_ ABSL_GUARDED_BY(mu_);
  std::map<Key, absl::StatusOr<SegmentResult>> results_ ABSL_GUARDED_BY(mu_);
  std::vector<Key> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_BATCHING_RESULT_COLLECTOR_H_
