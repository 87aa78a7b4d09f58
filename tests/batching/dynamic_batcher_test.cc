// The dynamic batcher's basic contract: when batches form, what each task
// gets back, errors, and shutdown. Scheduling order (priorities, fairness,
// deadlines, cancellation, back-pressure) is in
// dynamic_batcher_scheduling_test.cc.

#include "src/batching/dynamic_batcher.h"

#include <set>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/batching/fake_runner.h"
#include "tests/batching/result_collector.h"

namespace audiotag {
namespace {

using ::audiotag::testing::FakeModel;
using ::audiotag::testing::ResultCollector;
using ::audiotag::testing::Tag;
using ::testing::ElementsAre;
using ::testing::SizeIs;

constexpr absl::Duration kForever = absl::Hours(1);

std::shared_ptr<RequestControl> Request(uint64_t id) {
  return std::make_shared<RequestControl>(id, Priority::kInteractive,
                                          absl::InfiniteFuture());
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

std::vector<size_t> BatchSizes(const FakeModel& model) {
  std::vector<size_t> sizes;
  for (const auto& batch : model.batches()) sizes.push_back(batch.size());
  return sizes;
}

TEST(DynamicBatcher, CreateRejectsBadOptions) {
  auto model = FakeModel::Create();
  auto create = [&model](BatcherOptions options, int runners = 1) {
    return DynamicBatcher::Create(std::move(options),
                                  model->NewRunners(runners))
        .status()
        .code();
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  BatcherOptions options = Options(0, kForever);
  EXPECT_EQ(create(options), kInvalid);
  options = Options(8, kForever);
  options.preferred_batch_sizes = {4, 2};
  EXPECT_EQ(create(options), kInvalid);
  options.preferred_batch_sizes = {4, 16};
  EXPECT_EQ(create(options), kInvalid);
  options.preferred_batch_sizes = {0, 4};
  EXPECT_EQ(create(options), kInvalid);
  options = Options(8, kForever);
  options.max_queue_size = 0;
  EXPECT_EQ(create(options), kInvalid);
  options = Options(8, kForever);
  options.bulk_batch_size_under_interactive = 9;
  EXPECT_EQ(create(options), kInvalid);
  options.bulk_batch_size_under_interactive = -1;
  EXPECT_EQ(create(options), kInvalid);
  options.bulk_batch_size_under_interactive = 8;
  options.interactive_window = -absl::Seconds(1);
  EXPECT_EQ(create(options), kInvalid);
  EXPECT_EQ(create(Options(8, -absl::Milliseconds(1))), kInvalid);
  EXPECT_EQ(create(Options(8, kForever), 0), kInvalid);
  std::vector<std::unique_ptr<BatchRunner>> null_runner(1);
  EXPECT_EQ(DynamicBatcher::Create(Options(8, kForever), std::move(null_runner))
                .status()
                .code(),
            kInvalid);
}

TEST(DynamicBatcher, FlushesOnMaxBatchSize) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(4, kForever), *model);
  ASSERT_NE(batcher, nullptr);
  auto request = Request(1);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(request, i)).ok());
  }
  ASSERT_TRUE(results.WaitForCalls(4));
  EXPECT_THAT(BatchSizes(*model), ElementsAre(4));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(results.result(1, i).ok());
    EXPECT_EQ(results.result(1, i)->batch_size, 4);
  }
}

TEST(DynamicBatcher, FlushesOnMaxDelay) {
  constexpr absl::Duration kDelay = absl::Milliseconds(100);
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(8, kDelay), *model);
  ASSERT_NE(batcher, nullptr);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(batcher->Enqueue(results.MakeTask(Request(1), 0)).ok());
  ASSERT_TRUE(results.WaitForCalls(1));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_GE(elapsed, kDelay);
  EXPECT_LT(elapsed, absl::Seconds(20));
  auto result = results.result(1, 0);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->queue_time, kDelay);
  EXPECT_EQ(result->batch_size, 1);
}

TEST(DynamicBatcher, FlushesOnPreferredSize) {
  auto model = FakeModel::Create();
  ResultCollector results;
  BatcherOptions options = Options(8, kForever);
  options.preferred_batch_sizes = {3};
  auto batcher = Start(options, *model);
  ASSERT_NE(batcher, nullptr);
  auto request = Request(1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(request, i)).ok());
  }
  ASSERT_TRUE(results.WaitForCalls(3));
  EXPECT_THAT(BatchSizes(*model), ElementsAre(3));
  for (int i = 3; i < 5; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(request, i)).ok());
  }
  batcher->Stop();  // drains the two that wait for more
  EXPECT_THAT(BatchSizes(*model), ElementsAre(3, 2));
}

TEST(DynamicBatcher, SlicesOutputsPerTask) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(4, kForever), *model);
  ASSERT_NE(batcher, nullptr);
  auto request = Request(7);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(request, i)).ok());
  }
  ASSERT_TRUE(results.WaitForCalls(4));
  const std::vector<float> batch_tags = model->batches().at(0);
  std::set<float> rows;
  for (int i = 0; i < 4; ++i) {
    auto result = results.result(7, i);
    ASSERT_TRUE(result.ok()) << result.status();
    const float tag = Tag(7, i);
    ASSERT_THAT(result->outputs, SizeIs(3));
    EXPECT_THAT(result->outputs[0].shape, ElementsAre(2));
    EXPECT_THAT(result->outputs[0].data, ElementsAre(2 * tag, 1.0f));
    EXPECT_THAT(result->outputs[1].shape, ElementsAre(1));
    ASSERT_THAT(result->outputs[1].data, SizeIs(1));
    const float row = result->outputs[1].data[0];
    EXPECT_EQ(batch_tags.at(static_cast<size_t>(row)), tag);
    rows.insert(row);
    EXPECT_TRUE(result->outputs[2].shape.empty());
    EXPECT_THAT(result->outputs[2].data, ElementsAre(tag));
    EXPECT_GE(result->compute_time, absl::ZeroDuration());
  }
  EXPECT_THAT(rows, ElementsAre(0, 1, 2, 3));
}

TEST(DynamicBatcher, PropagatesRunnerErrorAndKeepsServing) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(3, kForever), *model);
  ASSERT_NE(batcher, nullptr);
  model->FailWith(absl::InternalError("boom"));
  auto failing = Request(1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(failing, i)).ok());
  }
  ASSERT_TRUE(results.WaitForCalls(3));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results.result(1, i).status(), absl::InternalError("boom"));
  }
  model->FailWith(absl::OkStatus());
  auto healthy = Request(2);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(healthy, i)).ok());
  }
  ASSERT_TRUE(results.WaitForCalls(6));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(results.result(2, i).ok());
}

TEST(DynamicBatcher, RejectsWrongInputShape) {
  auto model = FakeModel::Create();
  ResultCollector results;
  BatcherOptions options = Options(1, kForever);
  options.input_shape = {2};
  auto batcher = Start(options, *model);
  ASSERT_NE(batcher, nullptr);
  auto task = results.MakeTask(Request(1), 0);
  task->input = Tensor{{3}, {1, 2, 3}};
  EXPECT_EQ(batcher->Enqueue(std::move(task)).code(),
            absl::StatusCode::kInvalidArgument);
  task = results.MakeTask(Request(1), 1);
  task->input.data.push_back(4);  // shape [2], three values
  EXPECT_EQ(batcher->Enqueue(std::move(task)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(batcher->Enqueue(nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  batcher->Stop();
  EXPECT_EQ(results.total_calls(), 0);
  EXPECT_EQ(model->rows_run(), 0);
}

TEST(DynamicBatcher, StopDrainsQueuedSegments) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto batcher = Start(Options(4, kForever), *model);
  ASSERT_NE(batcher, nullptr);
  auto request = Request(1);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(request, i)).ok());
  }
  batcher->Stop();
  EXPECT_EQ(results.total_calls(), 10);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(results.calls(1, i), 1);
    EXPECT_TRUE(results.result(1, i).ok()) << results.result(1, i).status();
  }
  EXPECT_EQ(batcher->queue_depth(), 0);
  EXPECT_EQ(batcher->Enqueue(results.MakeTask(request, 10)).code(),
            absl::StatusCode::kUnavailable);
  batcher->Stop();  // idempotent
  EXPECT_EQ(results.total_calls(), 10);
}

TEST(DynamicBatcher, ReportsBatchStats) {
  auto model = FakeModel::Create();
  ResultCollector results;
  absl::Mutex mu;
  std::vector<BatchStats> stats;
  BatcherOptions options = Options(2, kForever);
  options.on_batch = [&mu, &stats](const BatchStats& s) {
    absl::MutexLock lock(&mu);
    stats.push_back(s);
  };
  auto batcher = Start(options, *model);
  ASSERT_NE(batcher, nullptr);
  auto request = Request(1);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(batcher->Enqueue(results.MakeTask(request, i)).ok());
  }
  ASSERT_TRUE(results.WaitForCalls(2));  // on_batch runs before callbacks
  absl::MutexLock lock(&mu);
  ASSERT_THAT(stats, SizeIs(1));
  EXPECT_EQ(stats[0].batch_size, 2);
  EXPECT_EQ(stats[0].instance, 0);
  EXPECT_THAT(stats[0].queue_times, SizeIs(2));
  EXPECT_GE(stats[0].compute_time, absl::ZeroDuration());
}

}  // namespace
}  // namespace audiotag
