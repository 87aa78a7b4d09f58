// Batches that know a request is still arriving: a batch that
// max_queue_delay would launch waits for the segments its requests announced
// through their SegmentFeed, and never for segments nobody announced. Holds
// are made long (an hour) so that a test that passes proves the hold ended
// for the right reason (the segments came, the feed closed or stalled), not
// because its budget ran out; a wrong hold shows as a WaitForCalls timeout.

#include <memory>

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
using ::testing::ElementsAre;
using ::testing::SizeIs;

constexpr absl::Duration kLongHold = absl::Hours(1);

std::shared_ptr<RequestControl> Request(uint64_t id) {
  return std::make_shared<RequestControl>(id, Priority::kInteractive,
                                          absl::InfiniteFuture());
}

BatcherOptions Options(int max_batch_size) {
  BatcherOptions options;
  options.name = "test";
  options.max_batch_size = max_batch_size;
  options.max_queue_delay = absl::Milliseconds(1);
  options.max_arrival_wait = kLongHold;
  return options;
}

std::unique_ptr<DynamicBatcher> Start(BatcherOptions options,
                                      FakeModel& model) {
  auto batcher =
      DynamicBatcher::Create(std::move(options), model.NewRunners(1));
  EXPECT_TRUE(batcher.ok()) << batcher.status();
  return batcher.ok() ? std::move(*batcher) : nullptr;
}

// Plays a request's ModelRun: queues segments of one request through one
// feed, announcing before each how many will still follow it.
class Producer {
 public:
  Producer(Scheduler& scheduler, ResultCollector& results, uint64_t id,
           int64_t total)
      : scheduler_(scheduler),
        results_(results),
        request_(Request(id)),
        total_(total) {}

  void Queue(int count) {
    for (int i = 0; i < count; ++i, ++next_) {
      feed_->SetRemaining(total_ < 0 ? SegmentFeed::kUnknown
                                     : total_ - next_ - 1);
      auto task = results_.MakeTask(request_, next_);
      task->feed = feed_;
      ASSERT_TRUE(scheduler_.Enqueue(std::move(task)).ok());
    }
  }
  SegmentFeed& feed() { return *feed_; }

 private:
  Scheduler& scheduler_;
  ResultCollector& results_;
  const std::shared_ptr<RequestControl> request_;
  const int64_t total_;  // < 0: unknown (still decoding)
  const std::shared_ptr<SegmentFeed> feed_ = std::make_shared<SegmentFeed>();
  int64_t next_ = 0;
};

std::vector<std::vector<uint64_t>> BatchRequests(const FakeModel& model) {
  std::vector<std::vector<uint64_t>> requests;
  for (const auto& batch : model.batches()) {
    auto& ids = requests.emplace_back();
    for (float tag : batch) ids.push_back(TagRequest(tag));
  }
  return requests;
}

TEST(DynamicBatcherArrival, RequestArrivingInTwoBurstsRunsAsOneBatch) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(16), *model);
  Producer producer(*batcher, results, 1, /*total=*/10);
  producer.Queue(5);
  // Well past max_queue_delay: without the announcement the first five
  // would run alone.
  absl::SleepFor(absl::Milliseconds(20));
  producer.Queue(5);
  ASSERT_TRUE(results.WaitForCalls(10));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(10)));
}

TEST(DynamicBatcherArrival, StreamingRequestFillsTheBatchBeforeItRuns) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(8), *model);
  Producer producer(*batcher, results, 1, /*total=*/-1);
  producer.Queue(3);
  absl::SleepFor(absl::Milliseconds(20));
  producer.Queue(5);
  ASSERT_TRUE(results.WaitForCalls(8));
  producer.Queue(2);
  producer.feed().Close();
  batcher->Wake();
  ASSERT_TRUE(results.WaitForCalls(10));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(8), SizeIs(2)));
}

TEST(DynamicBatcherArrival, LoneSegmentWithoutFeedIsNotHeld) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(16), *model);
  ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(1), 0)).ok());
  ASSERT_TRUE(results.WaitForCalls(1));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(1)));
}

TEST(DynamicBatcherArrival, LoneLastSegmentIsNotHeld) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(16), *model);
  Producer producer(*batcher, results, 1, /*total=*/1);
  producer.Queue(1);
  ASSERT_TRUE(results.WaitForCalls(1));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(1)));
}

TEST(DynamicBatcherArrival, ClosingTheFeedReleasesAHeldBatch) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(16), *model);
  Producer producer(*batcher, results, 1, /*total=*/-1);
  producer.Queue(2);
  // The decode ended without a further segment (the stream's length was a
  // multiple of the hop).
  producer.feed().Close();
  batcher->Wake();
  ASSERT_TRUE(results.WaitForCalls(2));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(2)));
}

TEST(DynamicBatcherArrival, StalledFeedReleasesAHeldBatch) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(16), *model);
  Producer producer(*batcher, results, 1, /*total=*/10);
  producer.Queue(2);
  // The producer waits for these two to finish (its in-flight limit).
  producer.feed().SetStalled(true);
  batcher->Wake();
  ASSERT_TRUE(results.WaitForCalls(2));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(2)));
}

TEST(DynamicBatcherArrival, ZeroArrivalWaitTurnsHoldingOff) {
  ResultCollector results;
  auto model = FakeModel::Create();
  BatcherOptions options = Options(16);
  options.max_arrival_wait = absl::ZeroDuration();
  auto batcher = Start(options, *model);
  Producer producer(*batcher, results, 1, /*total=*/10);
  producer.Queue(2);
  ASSERT_TRUE(results.WaitForCalls(2));
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(2)));
}

TEST(DynamicBatcherArrival, OtherRequestsDoNotWaitForAnUnannouncedOne) {
  ResultCollector results;
  auto model = FakeModel::Create();
  auto batcher = Start(Options(16), *model);
  ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(1), 0)).ok());
  Producer producer(*batcher, results, 2, /*total=*/2);
  producer.Queue(2);
  ASSERT_TRUE(results.WaitForCalls(3));
  int rows = 0;
  for (const auto& batch : model->batches()) rows += batch.size();
  EXPECT_EQ(rows, 3);
}

TEST(DynamicBatcherArrival, PerRequestBatchesNeverMixRequests) {
  ResultCollector results;
  auto model = FakeModel::Create();
  model->CloseGate();
  BatcherOptions options = Options(4);
  options.per_request = true;
  options.max_queue_delay = absl::ZeroDuration();
  auto batcher = Start(options, *model);
  ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(9), 0)).ok());
  ASSERT_TRUE(model->WaitForRunsStarted(1));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(1), i)).ok());
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(2), i)).ok());
  }
  for (int i = 3; i < 6; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(1), i)).ok());
  }
  model->OpenGate();
  ASSERT_TRUE(results.WaitForCalls(10));
  EXPECT_THAT(BatchRequests(*model),
              ElementsAre(ElementsAre(9), ElementsAre(1, 1, 1, 1),
                          ElementsAre(2, 2, 2), ElementsAre(1, 1)));
}

}  // namespace
}  // namespace audiotag
