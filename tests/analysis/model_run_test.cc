// ModelRun (src/analysis/model_run.cc).
//
// Its errors for audio that yields no segment, against real TorchScript
// models in a real repository: a dropping model says how short the audio
// was, and a padding model that receives no samples at all says that, not
// "drops partial segments".
//
// Its orchestration, against a FakeScheduler (fake_scheduler.h) the test
// drives segment by segment: the in-flight limit (back-pressure, the feed
// marked stalled), the retry on a full queue, results in segment order,
// cancellation while the request is still decoding, and which error a
// failed run reports.

#include "src/analysis/model_run.h"

#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_repository.h"
#include "tests/analysis/fake_scheduler.h"
#include "tests/model/test_models.h"

namespace audiotag {
namespace {

using ::audiotag::testing::FakeModelConfig;
using ::audiotag::testing::FakeScheduler;
using ::audiotag::testing::MakeFakeModel;
using ::audiotag::testing::MakeTempDir;
using ::audiotag::testing::WriteModelFolder;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Config(const std::string& last_segment) {
  return R"pb(
           input {
             sample_rate: 16000
             waveform {}
           }
           segment { window_samples: 16000 last_segment:)pb" +
         last_segment + R"pb(}
                             output { name: "e" kind: EMBEDDING dim: 4 }
  )pb";
}

class ModelRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string root = MakeTempDir("model-run");
    const std::string forward = "def forward(self, x):\n    return x[:, :4]\n";
    WriteModelFolder(root, "pad", Config("LAST_SEGMENT_PAD"), 0, 1, forward);
    WriteModelFolder(root, "drop", Config("LAST_SEGMENT_DROP"), 0, 1, forward);
    RepositoryOptions options;
    options.root = root;
    auto repository = ModelRepository::Open(options);
    ASSERT_TRUE(repository.ok()) << repository.status();
    repository_ = *std::move(repository);
  }

  std::unique_ptr<ModelRun> Run(const std::string& name) {
    auto model = repository_->Get(name);
    EXPECT_TRUE(model.ok()) << model.status();
    return std::make_unique<ModelRun>(
        *model,
        std::make_shared<RequestControl>(1, Priority::kInteractive,
                                         absl::InfiniteFuture()),
        4);
  }

  std::unique_ptr<ModelRepository> repository_;
};

TEST_F(ModelRunTest, PaddingModelWithNoSamplesDoesNotBlameDropping) {
  auto run = Run("pad");
  const absl::Status status = run->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model 'pad' received no audio"));
  EXPECT_THAT(status.message(), Not(HasSubstr("drops partial segments")));
}

TEST_F(ModelRunTest, PaddingModelPadsOneSample) {
  auto run = Run("pad");
  const std::vector<float> one = {0.5f};
  ASSERT_TRUE(run->Push(one).ok());
  ASSERT_TRUE(run->Finish().ok());
  auto result = run->Result(AggregationOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->num_segments(), 1);
}

TEST_F(ModelRunTest, DroppingModelStatesHowShortTheAudioWas) {
  auto run = Run("drop");
  const std::vector<float> ten(10, 0.5f);
  ASSERT_TRUE(run->Push(ten).ok());
  const absl::Status status = run->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("the audio (10 samples, 0.000625 s at 16000 Hz) is "
                        "shorter than model 'drop''s segment (16000 samples, "
                        "1.000 s), which drops partial segments"));
}

// --- Orchestration, against a FakeScheduler.

// The fake models' segments: 4 samples each (16 kHz, padded last segment).
constexpr int64_t kWindow = 4;

// `n` samples counting up from `from`: segment i starts with sample 4 i.
std::vector<float> Ramp(int64_t n, float from = 0) {
  std::vector<float> samples(static_cast<size_t>(n));
  std::iota(samples.begin(), samples.end(), from);
  return samples;
}

// Runs `push` on a thread of its own: the request's thread, which the
// in-flight limit or a full queue blocks. On destruction answers whatever
// the scheduler holds until the thread is done, so a failed test ends.
class Producer {
 public:
  Producer(FakeScheduler* scheduler, std::function<absl::Status()> push)
      : scheduler_(scheduler), thread_([this, push = std::move(push)] {
          status_ = push();
          done_.Notify();
        }) {}
  ~Producer() {
    while (!done_.WaitForNotificationWithTimeout(absl::Milliseconds(10))) {
      scheduler_->RunAll();
    }
    if (thread_.joinable()) thread_.join();
  }

  bool done() const { return done_.HasBeenNotified(); }
  absl::Status Join() {
    thread_.join();
    return status_;
  }

 private:
  FakeScheduler* const scheduler_;
  absl::Status status_;
  absl::Notification done_;
  std::thread thread_;  // last: starts once the members it uses exist
};

class FakeModelRunTest : public ::testing::Test {
 protected:
  void Make(int max_in_flight) {
    model_ = MakeFakeModel(FakeModelConfig("m", kWindow), /*auto_run=*/false,
                           &scheduler_);
    run_ = std::make_unique<ModelRun>(model_, control_, max_in_flight);
  }

  void TearDown() override {
    // The run's destructor waits for every segment it queued.
    if (scheduler_ != nullptr) scheduler_->RunAll();
    run_.reset();
  }

  // Each segment's embedding (the fake's {index, first sample}), in the
  // order Result gives them.
  std::vector<std::vector<float>> SegmentValues() const {
    AggregationOptions options;
    options.segment_embeddings = true;
    absl::StatusOr<v1::ModelResult> result = run_->Result(options);
    EXPECT_TRUE(result.ok()) << result.status();
    std::vector<std::vector<float>> values;
    if (!result.ok() || result->outputs().empty()) return values;
    for (const v1::SegmentEmbedding& s : result->outputs(0).segments()) {
      values.emplace_back(s.values().begin(), s.values().end());
    }
    return values;
  }

  const std::shared_ptr<RequestControl> control_ =
      std::make_shared<RequestControl>(1, Priority::kInteractive,
                                       absl::InfiniteFuture());
  FakeScheduler* scheduler_ = nullptr;
  std::shared_ptr<const Model> model_;
  std::unique_ptr<ModelRun> run_;
};

TEST_F(FakeModelRunTest, HoldsAtMostMaxInFlightSegmentsAndStallsItsFeed) {
  Make(2);
  const std::vector<float> samples = Ramp(6 * kWindow);
  Producer producer(scheduler_, [&] { return run_->Push(samples); });
  ASSERT_TRUE(scheduler_->AwaitHeld(2));
  // The third segment waits for room and tells the scheduler so, which
  // then holds no batch for it.
  ASSERT_TRUE(scheduler_->AwaitStalled());
  EXPECT_GE(scheduler_->wakes(), 1);
  EXPECT_EQ(scheduler_->accepted(), 2);
  EXPECT_FALSE(producer.done());
  for (int answered = 0; answered < 6; ++answered) {
    ASSERT_TRUE(scheduler_->AwaitHeld(1));
    scheduler_->RunOldest(1);
  }
  EXPECT_TRUE(producer.Join().ok());
  EXPECT_EQ(scheduler_->accepted(), 6);
  EXPECT_EQ(scheduler_->max_held(), 2);
  ASSERT_TRUE(run_->Finish().ok());
  EXPECT_EQ(run_->segment_count(), 6);
}

TEST_F(FakeModelRunTest, ResultsComeInSegmentOrderWhateverOrderTheyFinish) {
  Make(8);
  ASSERT_TRUE(run_->Push(Ramp(4 * kWindow)).ok());
  ASSERT_EQ(scheduler_->held(), 4);
  // Held [0 1 2 3]: finish 3, then 1, then 2, then 0.
  for (int position : {3, 1, 1, 0}) scheduler_->RunHeld({position});
  ASSERT_TRUE(run_->Finish().ok());
  EXPECT_THAT(SegmentValues(),
              ElementsAre(ElementsAre(0, 0), ElementsAre(1, 4),
                          ElementsAre(2, 8), ElementsAre(3, 12)));
}

TEST_F(FakeModelRunTest, AFullQueueWithNothingInFlightFailsTheRequest) {
  Make(4);
  scheduler_->RefuseNext(
      1, absl::ResourceExhaustedError("the queue holds 4096 segments"));
  const absl::Status status = run_->Push(Ramp(kWindow));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(),
              HasSubstr("model 'm' is at its queue limit; retry later (the "
                        "queue holds 4096 segments)"));
  EXPECT_EQ(scheduler_->accepted(), 0);
}

TEST_F(FakeModelRunTest, AFullQueueWaitsForOneOfItsOwnSegmentsAndRetries) {
  Make(4);
  ASSERT_TRUE(run_->Push(Ramp(kWindow)).ok());
  ASSERT_EQ(scheduler_->held(), 1);
  scheduler_->RefuseNext(1, absl::ResourceExhaustedError("full"));
  const std::vector<float> more = Ramp(kWindow, kWindow);
  Producer producer(scheduler_, [&] { return run_->Push(more); });
  ASSERT_TRUE(scheduler_->AwaitRefused(1));
  // Refused while segment 0 is queued: it waits for segment 0.
  ASSERT_TRUE(scheduler_->AwaitStalled());
  EXPECT_FALSE(producer.done());
  EXPECT_EQ(scheduler_->accepted(), 1);
  scheduler_->RunOldest(1);
  ASSERT_TRUE(scheduler_->AwaitHeld(1));
  EXPECT_TRUE(producer.Join().ok());
  EXPECT_THAT(scheduler_->held_indices(), ElementsAre(1));
  scheduler_->RunAll();
  ASSERT_TRUE(run_->Finish().ok());
  EXPECT_THAT(SegmentValues(),
              ElementsAre(ElementsAre(0, 0), ElementsAre(1, 4)));
}

TEST_F(FakeModelRunTest, OtherEnqueueErrorsAreReturnedWithoutARetry) {
  Make(4);
  ASSERT_TRUE(run_->Push(Ramp(kWindow)).ok());
  const absl::Status refusal =
      absl::InvalidArgumentError("input has shape [4]; the model takes [5]");
  scheduler_->RefuseNext(2, refusal);
  EXPECT_EQ(run_->Push(Ramp(kWindow, kWindow)), refusal);
  EXPECT_EQ(scheduler_->refused(), 1);
}

TEST_F(FakeModelRunTest, CancellingWhileWaitingForRoomQueuesNothingMore) {
  Make(2);
  const std::vector<float> samples = Ramp(6 * kWindow);
  Producer producer(scheduler_, [&] { return run_->Push(samples); });
  ASSERT_TRUE(scheduler_->AwaitHeld(2));
  ASSERT_TRUE(scheduler_->AwaitStalled());
  control_->Cancel();    // the client went away mid-decode
  scheduler_->RunAll();  // both held segments are answered CANCELLED
  EXPECT_EQ(producer.Join().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(run_->Finish().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(scheduler_->accepted(), 2);
}

TEST_F(FakeModelRunTest, CancellingBetweenSegmentsStopsAtTheNextOne) {
  Make(8);
  ASSERT_TRUE(run_->Push(Ramp(2 * kWindow)).ok());
  control_->Cancel();
  EXPECT_EQ(run_->Push(Ramp(kWindow, 2 * kWindow)).code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(scheduler_->accepted(), 2);
  scheduler_->RunAll();
  EXPECT_EQ(run_->Wait().code(), absl::StatusCode::kCancelled);
}

TEST_F(FakeModelRunTest, TheFirstErrorToArriveIsTheRunsError) {
  Make(8);
  ASSERT_TRUE(run_->Push(Ramp(3 * kWindow)).ok());
  const absl::Status first = absl::DataLossError("segment 2's batch failed");
  scheduler_->FailSegment(2, first);
  scheduler_->FailSegment(1, absl::InternalError("segment 1's batch failed"));
  scheduler_->RunHeld({2});  // segment 2 fails first
  // A failed request spends no more compute.
  EXPECT_TRUE(control_->cancelled());
  scheduler_->RunAll();  // segment 0: CANCELLED; segment 1: its own error
  EXPECT_EQ(run_->Finish(), first);
  EXPECT_EQ(run_->Wait(), first);
}

TEST_F(FakeModelRunTest, ANonFiniteOutputFailsNamingModelOutputAndSegment) {
  Make(8);
  scheduler_->set_outputs([](const SegmentTask& task) {
    Tensor out{{2}, {1.0f, task.index == 1 ? std::nanf("") : 0.0f}};
    return std::vector<Tensor>{out};
  });
  ASSERT_TRUE(run_->Push(Ramp(2 * kWindow)).ok());
  scheduler_->RunAll();
  const absl::Status status = run_->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(),
              HasSubstr("model 'm' produced a non-finite value (nan) in "
                        "output 'e' for segment 1"));
}

TEST_F(FakeModelRunTest, PushWholeAnnouncesTheExactSegmentCount) {
  Make(8);
  // 10 samples: two whole segments and a padded third.
  ASSERT_TRUE(run_->PushWhole(Ramp(2 * kWindow + 2)).ok());
  EXPECT_THAT(scheduler_->remaining_at_enqueue(), ElementsAre(2, 1, 0));
  scheduler_->RunAll();
  ASSERT_TRUE(run_->Finish().ok());
  EXPECT_EQ(run_->segment_count(), 3);
}

TEST_F(FakeModelRunTest, StreamingAnnouncesAnUnknownCountUntilFinish) {
  Make(8);
  ASSERT_TRUE(run_->Push(Ramp(2 * kWindow)).ok());
  EXPECT_THAT(scheduler_->remaining_at_enqueue(),
              ElementsAre(SegmentFeed::kUnknown, SegmentFeed::kUnknown));
  scheduler_->RunAll();
  ASSERT_TRUE(run_->Finish().ok());
  EXPECT_THAT(SegmentValues(),
              ElementsAre(ElementsAre(0, 0), ElementsAre(1, 4)));
}

}  // namespace
}  // namespace audiotag
