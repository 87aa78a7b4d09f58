#include "tests/batching/result_collector.h"

#include "absl/status/status.h"
#include "tests/batching/fake_runner.h"

namespace audiotag::testing {

std::unique_ptr<SegmentTask> ResultCollector::MakeTask(
    std::shared_ptr<RequestControl> request, int64_t index) {
  auto task = std::make_unique<SegmentTask>();
  const Key key{request->id(), index};
  task->input = Segment(Tag(request->id(), index));
  task->request = std::move(request);
  task->index = index;
  task->done = [this, key](absl::StatusOr<SegmentResult> result) {
    Record(key, std::move(result));
  };
  return task;
}

void ResultCollector::Record(Key key, absl::StatusOr<SegmentResult> result) {
  absl::MutexLock lock(&mu_);
  ++calls_[key];
  results_.insert_or_assign(key, std::move(result));
  order_.push_back(key);
}

bool ResultCollector::WaitForCalls(int count) {
  absl::MutexLock lock(&mu_);
  auto reached = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(order_.size()) >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), kWait);
}

int ResultCollector::total_calls() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(order_.size());
}

int ResultCollector::calls(uint64_t id, int64_t index) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find({id, index});
  return it == calls_.end() ? 0 : it->second;
}

absl::StatusOr<SegmentResult> ResultCollector::result(uint64_t id,
                                                      int64_t index) const {
  absl::MutexLock lock(&mu_);
  auto it = results_.find({id, index});
  if (it == results_.end()) return absl::NotFoundError("no result");
  return it->second;
}

std::vector<ResultCollector::Key> ResultCollector::order() const {
  absl::MutexLock lock(&mu_);
  return order_;
}

}  // namespace audiotag::testing
