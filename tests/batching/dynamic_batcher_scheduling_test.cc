// Which segments the dynamic batcher runs, and when: priorities, fairness
// between requests, deadlines, cancellation, back-pressure and concurrent
// instances. Orderings are made deterministic by holding the fake runner at
// its gate while the queue fills, never by sleeping.

#include <algorithm>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/batching/dynamic_batcher.h"
#include "tests/batching/fake_runner.h"
#include "tests/batching/result_collector.h"

namespace audiotag {
namespace {

using ::audiotag::testing::FakeModel;
using ::audiotag::testing::ResultCollector;
using ::audiotag::testing::TagRequest;
using ::testing::Each;
using ::testing::ElementsAre;

std::shared_ptr<RequestControl> Request(
    uint64_t id, Priority priority = Priority::kInteractive,
    absl::Time deadline = absl::InfiniteFuture()) {
  return std::make_shared<RequestControl>(id, priority, deadline);
}

BatcherOptions Options(int max_batch_size, absl::Duration max_queue_delay) {
  BatcherOptions options;
  options.name = "test";
  options.max_batch_size = max_batch_size;
  options.max_queue_delay = max_queue_delay;
  return options;
}

std::unique_ptr<DynamicBatcher> Start(BatcherOptions options, FakeModel& model,
                                      int instances = 1) {
  auto batcher =
      DynamicBatcher::Create(std::move(options), model.NewRunners(instances));
  EXPECT_TRUE(batcher.ok()) << batcher.status();
  return batcher.ok() ? std::move(*batcher) : nullptr;
}

// The request id of every row of every batch the model ran.
std::vector<std::vector<uint64_t>> BatchRequests(const FakeModel& model) {
  std::vector<std::vector<uint64_t>> requests;
  for (const auto& batch : model.batches()) {
    auto& ids = requests.emplace_back();
    for (float tag : batch) ids.push_back(TagRequest(tag));
  }
  return requests;
}

// Enqueues segments [first, first + count) of `request`.
void EnqueueSegments(Scheduler& scheduler, ResultCollector& results,
                     const std::shared_ptr<RequestControl>& request, int first,
                     int count) {
  for (int i = first; i < first + count; ++i) {
    ASSERT_TRUE(scheduler.Enqueue(results.MakeTask(request, i)).ok());
  }
}

// Starts a one-instance batcher (no queue delay) and holds its runner at the
// gate on a one-segment batch of request 99, so that what the test enqueues
// next waits in the queue.
class BlockedBatcher {
 public:
  explicit BlockedBatcher(BatcherOptions options)
      : model_(FakeModel::Create()) {
    model_->CloseGate();
    batcher_ = Start(std::move(options), *model_);
    EXPECT_TRUE(
        batcher_->Enqueue(results_.MakeTask(Request(kBlocker), 0)).ok());
    EXPECT_TRUE(model_->WaitForRunsStarted(1));
  }
  ~BlockedBatcher() { model_->OpenGate(); }

  static constexpr uint64_t kBlocker = 99;
  FakeModel& model() { return *model_; }
  ResultCollector& results() { return results_; }
  DynamicBatcher& batcher() { return *batcher_; }

 private:
  std::shared_ptr<FakeModel> model_;
  ResultCollector results_;
  std::unique_ptr<DynamicBatcher> batcher_;
};

TEST(DynamicBatcher, ServesInteractiveBeforeBulk) {
  BlockedBatcher blocked(Options(4, absl::ZeroDuration()));
  EnqueueSegments(blocked.batcher(), blocked.results(),
                  Request(1, Priority::kBulk), 0, 4);
  EnqueueSegments(blocked.batcher(), blocked.results(),
                  Request(2, Priority::kInteractive), 0, 4);
  EXPECT_EQ(blocked.batcher().queue_depth(), 8);
  blocked.model().OpenGate();
  ASSERT_TRUE(blocked.results().WaitForCalls(9));
  EXPECT_THAT(BatchRequests(blocked.model()),
              ElementsAre(ElementsAre(BlockedBatcher::kBlocker),
                          ElementsAre(2, 2, 2, 2), ElementsAre(1, 1, 1, 1)));
}

TEST(DynamicBatcher, NeverTopsUpInteractiveBatchWithBulk) {
  BlockedBatcher blocked(Options(4, absl::ZeroDuration()));
  EnqueueSegments(blocked.batcher(), blocked.results(),
                  Request(1, Priority::kBulk), 0, 4);
  EnqueueSegments(blocked.batcher(), blocked.results(),
                  Request(2, Priority::kInteractive), 0, 2);
  blocked.model().OpenGate();
  ASSERT_TRUE(blocked.results().WaitForCalls(7));
  EXPECT_THAT(BatchRequests(blocked.model()),
              ElementsAre(ElementsAre(BlockedBatcher::kBlocker),
                          ElementsAre(2, 2), ElementsAre(1, 1, 1, 1)));
}

// The blocker is an interactive request, so interactive traffic is live
// while the bulk segments wait.
TEST(DynamicBatcher, ShrinksBulkBatchesWhileInteractiveTrafficIsLive) {
  BatcherOptions options = Options(4, absl::ZeroDuration());
  options.bulk_batch_size_under_interactive = 2;
  options.interactive_window = absl::Hours(1);
  BlockedBatcher blocked(options);
  EnqueueSegments(blocked.batcher(), blocked.results(),
                  Request(1, Priority::kBulk), 0, 5);
  blocked.model().OpenGate();
  ASSERT_TRUE(blocked.results().WaitForCalls(6));
  EXPECT_THAT(
      BatchRequests(blocked.model()),
      ElementsAre(ElementsAre(BlockedBatcher::kBlocker), ElementsAre(1, 1),
                  ElementsAre(1, 1), ElementsAre(1)));
}

TEST(DynamicBatcher, FullBulkBatchesOnceInteractiveTrafficIsOver) {
  BatcherOptions options = Options(4, absl::ZeroDuration());
  options.bulk_batch_size_under_interactive = 2;
  options.interactive_window = absl::ZeroDuration();
  BlockedBatcher blocked(options);
  EnqueueSegments(blocked.batcher(), blocked.results(),
                  Request(1, Priority::kBulk), 0, 5);
  blocked.model().OpenGate();
  ASSERT_TRUE(blocked.results().WaitForCalls(6));
  EXPECT_THAT(BatchRequests(blocked.model()),
              ElementsAre(ElementsAre(BlockedBatcher::kBlocker),
                          ElementsAre(1, 1, 1, 1), ElementsAre(1)));
}

TEST(DynamicBatcher, SmallRequestIsNotStarvedByHugeOne) {
  constexpr int kHuge = 3600;
  BatcherOptions options = Options(8, absl::ZeroDuration());
  options.max_queue_size = kHuge + 1;
  auto model = FakeModel::Create();
  ResultCollector results;
  model->CloseGate();
  auto batcher = Start(options, *model);
  ASSERT_NE(batcher, nullptr);
  EnqueueSegments(*batcher, results, Request(1, Priority::kBulk), 0, kHuge);
  ASSERT_TRUE(model->WaitForRunsStarted(1));
  EnqueueSegments(*batcher, results, Request(2, Priority::kBulk), 0, 1);
  model->OpenGate();
  ASSERT_TRUE(results.WaitForCalls(kHuge + 1));
  const auto batches = BatchRequests(*model);
  auto has_small = [](const std::vector<uint64_t>& ids) {
    return std::find(ids.begin(), ids.end(), 2) != ids.end();
  };
  const auto small_batch =
      std::find_if(batches.begin(), batches.end(), has_small);
  ASSERT_NE(small_batch, batches.end());
  // Batch 0 was already running when the small request arrived.
  EXPECT_EQ(small_batch - batches.begin(), 1);
}

TEST(DynamicBatcher, DropsExpiredSegmentsWithoutRunningThem) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(8, absl::Hours(1)), *model);
  ASSERT_NE(batcher, nullptr);
  auto expiring =
      Request(1, Priority::kInteractive, absl::Now() + absl::Milliseconds(100));
  EnqueueSegments(*batcher, results, expiring, 0, 3);
  EnqueueSegments(*batcher, results, Request(2), 0, 1);
  ASSERT_TRUE(results.WaitForCalls(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results.result(1, i).status().code(),
              absl::StatusCode::kDeadlineExceeded);
  }
  EXPECT_EQ(model->rows_run(), 0);
  EXPECT_EQ(batcher->queue_depth(), 1);
  batcher->Stop();
  EXPECT_TRUE(results.result(2, 0).ok());
  EXPECT_EQ(model->rows_run(), 1);
}

TEST(DynamicBatcher, DropsCancelledRequestWithoutRunningIt) {
  BlockedBatcher blocked(Options(4, absl::ZeroDuration()));
  auto cancelled = Request(1);
  EnqueueSegments(blocked.batcher(), blocked.results(), cancelled, 0, 6);
  EnqueueSegments(blocked.batcher(), blocked.results(), Request(2), 0, 2);
  cancelled->Cancel();
  blocked.model().OpenGate();
  ASSERT_TRUE(blocked.results().WaitForCalls(9));
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(blocked.results().result(1, i).status().code(),
              absl::StatusCode::kCancelled);
  }
  EXPECT_TRUE(blocked.results().result(2, 0).ok());
  EXPECT_TRUE(blocked.results().result(2, 1).ok());
  EXPECT_EQ(blocked.model().rows_run(), 3);
}

TEST(DynamicBatcher, NoticesCancellationWhileWaitingForBatch) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(8, absl::Hours(1)), *model);
  ASSERT_NE(batcher, nullptr);
  auto request = Request(1);
  EnqueueSegments(*batcher, results, request, 0, 2);
  request->Cancel();
  ASSERT_TRUE(results.WaitForCalls(2));
  EXPECT_EQ(results.result(1, 0).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(results.result(1, 1).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(model->rows_run(), 0);
  EXPECT_EQ(batcher->queue_depth(), 0);
}

TEST(DynamicBatcher, RejectsWhenQueueIsFull) {
  BatcherOptions options = Options(4, absl::ZeroDuration());
  options.max_queue_size = 2;
  BlockedBatcher blocked(options);
  EnqueueSegments(blocked.batcher(), blocked.results(), Request(1), 0, 2);
  EXPECT_EQ(blocked.batcher()
                .Enqueue(blocked.results().MakeTask(Request(1), 2))
                .code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(blocked.batcher().queue_depth(), 2);
  blocked.model().OpenGate();
  blocked.batcher().Stop();
  EXPECT_EQ(blocked.results().total_calls(), 3);
  EXPECT_EQ(blocked.results().calls(1, 2), 0);
  EXPECT_TRUE(blocked.results().result(1, 1).ok());
}

TEST(DynamicBatcher, RunsInstancesConcurrently) {
  auto model = FakeModel::Create();
  model->RequireConcurrency(2);  // each run waits until two are running
  ResultCollector results;
  auto batcher = Start(Options(1, absl::ZeroDuration()), *model, 2);
  ASSERT_NE(batcher, nullptr);
  EnqueueSegments(*batcher, results, Request(1), 0, 2);
  ASSERT_TRUE(results.WaitForCalls(2));
  EXPECT_EQ(model->max_in_flight(), 2);
  EXPECT_TRUE(results.result(1, 0).ok());
  EXPECT_TRUE(results.result(1, 1).ok());
}

}  // namespace
}  // namespace audiotag
