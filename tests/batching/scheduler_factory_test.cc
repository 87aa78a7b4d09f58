// CreateScheduler: the config's batching block chooses the policy, and its
// values reach the scheduler that runs the batches.

#include "src/batching/scheduler_factory.h"

#include <set>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/batching/fake_runner.h"
#include "tests/batching/result_collector.h"

namespace audiotag {
namespace {

using ::audiotag::testing::FakeModel;
using ::audiotag::testing::ResultCollector;
using ::audiotag::testing::TagRequest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::shared_ptr<RequestControl> Request(uint64_t id) {
  return std::make_shared<RequestControl>(id, Priority::kInteractive,
                                          absl::InfiniteFuture());
}

// A batching block as model_config.cc normalizes it, launching batches at
// once (no queue delay, no holding for announced segments).
v1::BatchingConfig Batching(int max_batch_size) {
  v1::BatchingConfig batching;
  batching.set_max_batch_size(max_batch_size);
  batching.set_max_queue_delay_us(0);
  batching.set_max_queue_size(4096);
  batching.set_bulk_batch_size_under_interactive(max_batch_size);
  batching.set_interactive_window_ms(10000);
  batching.set_max_arrival_wait_us(0);
  return batching;
}

SchedulerParts Parts(FakeModel& model, int instances = 1) {
  SchedulerParts parts;
  parts.name = "factory_test";
  parts.runners = model.NewRunners(instances);
  return parts;
}

// The set of request ids in each batch, in the order the batches ran.
std::vector<std::set<uint64_t>> BatchRequests(const FakeModel& model) {
  std::vector<std::set<uint64_t>> requests;
  for (const auto& batch : model.batches()) {
    auto& ids = requests.emplace_back();
    for (float tag : batch) ids.insert(TagRequest(tag));
  }
  return requests;
}

// Runs one segment of request 9 (held at the gate), queues two segments each
// of requests 1 and 2 behind it, then lets everything run.
void RunTwoRequestsBehindABlocker(Scheduler& scheduler, FakeModel& model,
                                  ResultCollector& results) {
  model.CloseGate();
  ASSERT_TRUE(scheduler.Enqueue(results.MakeTask(Request(9), 0)).ok());
  ASSERT_TRUE(model.WaitForRunsStarted(1));
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(scheduler.Enqueue(results.MakeTask(Request(1), i)).ok());
    ASSERT_TRUE(scheduler.Enqueue(results.MakeTask(Request(2), i)).ok());
  }
  model.OpenGate();
  ASSERT_TRUE(results.WaitForCalls(5));
}

TEST(PolicyOf, DynamicUnlessPerRequest) {
  v1::BatchingConfig batching = Batching(8);
  EXPECT_EQ(PolicyOf(batching), SchedulerPolicy::kDynamic);
  batching.set_per_request(true);
  EXPECT_EQ(PolicyOf(batching), SchedulerPolicy::kPerRequest);
}

TEST(CreateScheduler, DynamicPolicyBatchesAcrossRequests) {
  auto model = FakeModel::Create();
  ResultCollector results;
  auto scheduler = CreateScheduler(Batching(4), Parts(*model));
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  RunTwoRequestsBehindABlocker(**scheduler, *model, results);
  EXPECT_THAT(BatchRequests(*model),
              ElementsAre(std::set<uint64_t>{9}, std::set<uint64_t>{1, 2}));
}

TEST(CreateScheduler, PerRequestPolicyNeverMixesRequests) {
  auto model = FakeModel::Create();
  ResultCollector results;
  v1::BatchingConfig batching = Batching(4);
  batching.set_per_request(true);
  auto scheduler = CreateScheduler(batching, Parts(*model));
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  RunTwoRequestsBehindABlocker(**scheduler, *model, results);
  EXPECT_THAT(BatchRequests(*model),
              ElementsAre(std::set<uint64_t>{9}, std::set<uint64_t>{1},
                          std::set<uint64_t>{2}));
}

TEST(CreateScheduler, ConfigValuesReachTheScheduler) {
  auto model = FakeModel::Create();
  ResultCollector results;
  v1::BatchingConfig batching = Batching(2);
  batching.set_max_queue_size(3);
  absl::Mutex mu;
  std::vector<int> sizes;
  SchedulerParts parts = Parts(*model);
  parts.input_shape = {2};  // Segment() is [2]
  parts.on_batch = [&mu, &sizes](const BatchStats& s) {
    absl::MutexLock lock(&mu);
    sizes.push_back(s.batch_size);
  };
  auto scheduler = CreateScheduler(batching, std::move(parts));
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  model->CloseGate();
  auto request = Request(1);
  ASSERT_TRUE((*scheduler)->Enqueue(results.MakeTask(request, 0)).ok());
  ASSERT_TRUE(model->WaitForRunsStarted(1));
  // max_queue_size: three wait, the fourth is turned away.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE((*scheduler)->Enqueue(results.MakeTask(request, i)).ok());
  }
  EXPECT_EQ((*scheduler)->Enqueue(results.MakeTask(request, 4)).code(),
            absl::StatusCode::kResourceExhausted);
  model->OpenGate();
  ASSERT_TRUE(results.WaitForCalls(4));
  // max_batch_size 2: the three waiting segments run as 2 + 1.
  EXPECT_THAT(model->batches(), ElementsAre(SizeIs(1), SizeIs(2), SizeIs(1)));
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(sizes, ElementsAre(1, 2, 1));
  }
  // input_shape is checked.
  auto other = FakeModel::Create();
  SchedulerParts shaped = Parts(*other);
  shaped.input_shape = {3};
  auto checked = CreateScheduler(Batching(2), std::move(shaped));
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_EQ((*checked)->Enqueue(results.MakeTask(request, 5)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CreateScheduler, RejectsWhatItCannotRun) {
  auto model = FakeModel::Create();
  SchedulerParts none;
  none.name = "no_runners";
  auto no_runners = CreateScheduler(Batching(4), std::move(none));
  EXPECT_EQ(no_runners.status().code(), absl::StatusCode::kInvalidArgument);
  auto zero = CreateScheduler(Batching(0), Parts(*model));
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(), HasSubstr("max_batch_size"));
}

}  // namespace
}  // namespace audiotag
