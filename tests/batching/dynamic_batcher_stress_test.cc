// Many threads enqueue segments of many requests (some cancelled, some with
// deadlines, against a small queue) into a two-instance batcher: every
// accepted segment's callback is called exactly once, rejected ones never.

#include <atomic>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "src/batching/dynamic_batcher.h"
#include "tests/batching/fake_runner.h"
#include "tests/batching/result_collector.h"

namespace audiotag {
namespace {

using ::audiotag::testing::FakeModel;
using ::audiotag::testing::ResultCollector;
using ::audiotag::testing::Tag;

constexpr int kThreads = 4;
constexpr int kRequestsPerThread = 3;
constexpr int kSegments = 150;

// Request r of thread t: 0 plain, 1 cancelled halfway, 2 bulk with a short
// deadline.
std::shared_ptr<RequestControl> MakeRequest(int thread, int r) {
  const uint64_t id = thread * kRequestsPerThread + r + 1;
  if (r == 2) {
    return std::make_shared<RequestControl>(
        id, Priority::kBulk, absl::Now() + absl::Milliseconds(20));
  }
  return std::make_shared<RequestControl>(id, Priority::kInteractive,
                                          absl::InfiniteFuture());
}

void Produce(Scheduler& batcher, ResultCollector& results, int thread,
             std::atomic<int>& rejected) {
  std::vector<std::shared_ptr<RequestControl>> requests;
  for (int r = 0; r < kRequestsPerThread; ++r) {
    requests.push_back(MakeRequest(thread, r));
  }
  for (int i = 0; i < kSegments; ++i) {
    if (i == kSegments / 2) requests[1]->Cancel();
    for (const auto& request : requests) {
      absl::Status status;
      while (!(status = batcher.Enqueue(results.MakeTask(request, i))).ok()) {
        ASSERT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
        rejected.fetch_add(1);
        std::this_thread::yield();
      }
    }
  }
}

void ExpectOutcome(const ResultCollector& results, uint64_t id, int index) {
  EXPECT_EQ(results.calls(id, index), 1) << id << "/" << index;
  auto result = results.result(id, index);
  const int r = (id - 1) % kRequestsPerThread;
  if (result.ok()) {
    ASSERT_EQ(result->outputs.size(), 3u);
    EXPECT_EQ(result->outputs[2].data.at(0), Tag(id, index));
  } else if (r == 1) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
  } else {
    EXPECT_EQ(r, 2) << result.status();
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  }
}

TEST(DynamicBatcher, StressEveryCallbackCalledExactlyOnce) {
  auto model = FakeModel::Create();
  ResultCollector results;
  BatcherOptions options;
  options.name = "stress";
  options.max_batch_size = 8;
  options.preferred_batch_sizes = {4};
  options.max_queue_delay = absl::Milliseconds(1);
  options.max_queue_size = 64;
  auto batcher = DynamicBatcher::Create(options, model->NewRunners(2));
  ASSERT_TRUE(batcher.ok()) << batcher.status();

  std::atomic<int> rejected{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back(
        [&, t] { Produce(**batcher, results, t, rejected); });
  }
  for (std::thread& producer : producers) producer.join();
  (*batcher)->Stop();

  constexpr int kTotal = kThreads * kRequestsPerThread * kSegments;
  EXPECT_EQ(results.total_calls(), kTotal);
  for (uint64_t id = 1; id <= kThreads * kRequestsPerThread; ++id) {
    for (int i = 0; i < kSegments; ++i) ExpectOutcome(results, id, i);
  }
  EXPECT_LE(model->rows_run(), kTotal);
  EXPECT_EQ((*batcher)->queue_depth(), 0);
}

}  // namespace
}  // namespace audiotag
