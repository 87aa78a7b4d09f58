#include "tests/analysis/fake_scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "src/model/model_config.h"

namespace audiotag::testing {

FakeScheduler::FakeScheduler(bool auto_run) : auto_run_(auto_run) {
  outputs_ = [](const SegmentTask& task) {
    Tensor out;
    out.shape = {2};
    out.data = {static_cast<float>(task.index),
                task.input.data.empty() ? 0.0f : task.input.data[0]};
    return std::vector<Tensor>{std::move(out)};
  };
  if (!auto_run_) return;
  runner_ = std::thread([this] {
    for (;;) {
      std::vector<std::unique_ptr<SegmentTask>> tasks;
      {
        absl::MutexLock lock(&mu_);
        const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopped_ || !held_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (stopped_) return;
        for (auto& task : held_) tasks.push_back(std::move(task));
        held_.clear();
      }
      for (auto& task : tasks) Answer(std::move(task));
    }
  });
}

FakeScheduler::~FakeScheduler() { Stop(); }

absl::Status FakeScheduler::Enqueue(std::unique_ptr<SegmentTask> task) {
  absl::MutexLock lock(&mu_);
  if (stopped_) return absl::UnavailableError("the fake scheduler stopped");
  if (refuse_count_ > 0) {
    --refuse_count_;
    ++refused_;
    return refuse_status_;
  }
  ++accepted_;
  remaining_at_enqueue_.push_back(
      task->feed != nullptr ? task->feed->remaining() : kNoFeed);
  held_.push_back(std::move(task));
  max_held_ = std::max(max_held_, static_cast<int>(held_.size()));
  return absl::OkStatus();
}

void FakeScheduler::Stop() {
  std::deque<std::unique_ptr<SegmentTask>> left;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    left.swap(held_);
  }
  if (runner_.joinable()) runner_.join();
  for (auto& task : left) {
    task->done(absl::UnavailableError("the fake scheduler stopped"));
  }
}

void FakeScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakes_;
}

int64_t FakeScheduler::queue_depth() const { return held(); }

void FakeScheduler::set_outputs(Outputs outputs) {
  absl::MutexLock lock(&mu_);
  outputs_ = std::move(outputs);
}

void FakeScheduler::RefuseNext(int count, absl::Status status) {
  absl::MutexLock lock(&mu_);
  refuse_count_ = count;
  refuse_status_ = std::move(status);
}

void FakeScheduler::FailSegment(int64_t index, absl::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[index] = std::move(status);
}

void FakeScheduler::Answer(std::unique_ptr<SegmentTask> task) {
  Outputs outputs;
  absl::Status failure;
  {
    absl::MutexLock lock(&mu_);
    outputs = outputs_;
    if (auto it = failures_.find(task->index); it != failures_.end()) {
      failure = it->second;
    }
  }
  if (failure.ok()) failure = task->request->CheckAlive(absl::Now());
  if (!failure.ok()) {
    task->done(failure);
    return;
  }
  SegmentResult result;
  result.outputs = outputs(*task);
  result.batch_size = 1;
  result.batch_id = static_cast<uint64_t>(task->index) + 1;
  task->done(std::move(result));
}

std::vector<std::unique_ptr<SegmentTask>> FakeScheduler::Take(
    std::vector<int> positions) {
  std::sort(positions.begin(), positions.end());
  std::vector<std::unique_ptr<SegmentTask>> tasks;
  absl::MutexLock lock(&mu_);
  for (auto it = positions.rbegin(); it != positions.rend(); ++it) {
    if (*it < 0 || *it >= static_cast<int>(held_.size())) {
      ADD_FAILURE() << "no held segment at position " << *it;
      continue;
    }
    tasks.push_back(std::move(held_[*it]));
    held_.erase(held_.begin() + *it);
  }
  std::reverse(tasks.begin(), tasks.end());
  return tasks;
}

void FakeScheduler::RunHeld(std::vector<int> positions) {
  for (auto& task : Take(std::move(positions))) Answer(std::move(task));
}

void FakeScheduler::RunOldest(int count) {
  std::vector<int> positions;
  for (int i = 0; i < count; ++i) positions.push_back(i);
  RunHeld(std::move(positions));
}

void FakeScheduler::RunAll() { RunOldest(held()); }

bool FakeScheduler::AwaitHeld(int count) {
  absl::MutexLock lock(&mu_);
  const auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(held_.size()) >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), kWaitLimit);
}

bool FakeScheduler::AwaitRefused(int count) {
  absl::MutexLock lock(&mu_);
  const auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return refused_ >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), kWaitLimit);
}

bool FakeScheduler::AwaitStalled() {
  // The feed is a set of atomics the producer writes without our lock:
  // poll it.
  const absl::Time limit = absl::Now() + kWaitLimit;
  while (absl::Now() < limit) {
    {
      absl::MutexLock lock(&mu_);
      for (const auto& task : held_) {
        if (task->feed != nullptr && task->feed->stalled()) return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

int FakeScheduler::held() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(held_.size());
}

int FakeScheduler::max_held() const {
  absl::MutexLock lock(&mu_);
  return max_held_;
}

int FakeScheduler::accepted() const {
  absl::MutexLock lock(&mu_);
  return accepted_;
}

int FakeScheduler::refused() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

int FakeScheduler::wakes() const {
  absl::MutexLock lock(&mu_);
  return wakes_;
}

std::vector<int64_t> FakeScheduler::remaining_at_enqueue() const {
  absl::MutexLock lock(&mu_);
  return remaining_at_enqueue_;
}

std::vector<int64_t> FakeScheduler::held_indices() const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> indices;
  for (const auto& task : held_) indices.push_back(task->index);
  return indices;
}

v1::ModelConfig FakeModelConfig(const std::string& name, int64_t window) {
  absl::StatusOr<v1::ModelConfig> config =
      ParseModelConfig(absl::StrCat(R"pb(
                                      input {
                                        sample_rate: 16000
                                        waveform {}
                                      }
                                      segment { last_segment: LAST_SEGMENT_PAD
                                                window_samples:)pb",
                                    window, R"pb(}
                                                 output { name: "e" kind: EMBEDDING dim: 2 }
                   )pb"),
                       "fake config");
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return {};
  const absl::Status normalized = NormalizeModelConfig(name, &*config);
  EXPECT_TRUE(normalized.ok()) << normalized;
  return *config;
}

std::shared_ptr<const Model> MakeFakeModel(const v1::ModelConfig& config,
                                           bool auto_run,
                                           FakeScheduler** scheduler) {
  auto owned = std::make_unique<FakeScheduler>(auto_run);
  *scheduler = owned.get();
  std::vector<std::vector<std::string>> labels(
      static_cast<size_t>(config.output_size()));
  return std::make_shared<const Model>(config, 1, std::move(labels),
                                       std::move(owned));
}

}  // namespace audiotag::testing
