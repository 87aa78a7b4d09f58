// Analyzer (src/analysis/analyzer.cc) against models served by
// FakeScheduler (fake_scheduler.h): real FFmpeg decoding of a real WAV file,
// no LibTorch. Which error a failed request reports when several models
// fail or are cancelled, and what a cancellation in the middle of a decode
// leaves queued.

#include "src/analysis/analyzer.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/analysis/fake_scheduler.h"
#include "tests/testutil/audio_files.h"

namespace audiotag {
namespace {

using ::audiotag::testing::AudioSpec;
using ::audiotag::testing::FakeModelConfig;
using ::audiotag::testing::FakeScheduler;
using ::audiotag::testing::MakeAudioFile;
using ::audiotag::testing::MakeFakeModel;

// 0.1 s segments at 16 kHz: ten per second of audio.
constexpr int64_t kWindow = 1600;

// Serves a fixed set of ready models.
class FakeRepository : public ModelRepository {
 public:
  void Add(std::shared_ptr<const Model> model) {
    models_[model->name()] = std::move(model);
  }

  absl::StatusOr<std::shared_ptr<const Model>> Get(
      const std::string& name) const override {
    auto it = models_.find(name);
    if (it == models_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
    }
    return it->second;
  }
  std::vector<std::shared_ptr<const Model>> ReadyModels() const override {
    std::vector<std::shared_ptr<const Model>> models;
    for (const auto& [name, model] : models_) models.push_back(model);
    return models;
  }
  std::vector<v1::ModelInfo> List() const override { return {}; }
  absl::StatusOr<v1::ModelInfo> Describe(
      const std::string& /*name*/) const override {
    return absl::UnimplementedError("not in the fake");
  }
  void Rescan() override {}
  void Stop() override {}

 private:
  std::map<std::string, std::shared_ptr<const Model>> models_;
};

class AnalyzerTest : public ::testing::Test {
 protected:
  ~AnalyzerTest() override {
    if (request_.joinable()) {
      control_->Cancel();
      AnswerUntilDone();
      request_.join();
    }
  }

  // A model "name" whose segments the test answers (auto_run false) or that
  // answers them itself.
  FakeScheduler* AddModel(const std::string& name, bool auto_run) {
    FakeScheduler* scheduler = nullptr;
    repository_.Add(
        MakeFakeModel(FakeModelConfig(name, kWindow), auto_run, &scheduler));
    schedulers_.push_back(scheduler);
    return scheduler;
  }

  static std::string Wav(double seconds) {
    AudioSpec spec;
    spec.seconds = seconds;
    absl::StatusOr<std::string> bytes = MakeAudioFile(spec);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? *bytes : "";
  }

  static v1::AnalyzeOptions Models(const std::vector<std::string>& names) {
    v1::AnalyzeOptions options;
    for (const std::string& name : names) options.add_models(name);
    return options;
  }

  const Analyzer& MakeAnalyzer(AnalyzerOptions options = AnalyzerOptions()) {
    analyzer_ = std::make_unique<Analyzer>(&repository_, std::move(options));
    return *analyzer_;
  }

  // Runs Analyze on a thread of its own (the request's).
  void Start(std::string audio, v1::AnalyzeOptions options) {
    request_ = std::thread([this, audio = std::move(audio), options] {
      result_ = analyzer_->Analyze(audio, options, control_);
      done_.Notify();
    });
  }
  absl::StatusOr<v1::AnalyzeResponse> Join() {
    request_.join();
    return result_;
  }

  // Answers every segment the models hold until the request (Start) ends.
  void AnswerUntilDone() {
    while (!done_.WaitForNotificationWithTimeout(absl::Milliseconds(1))) {
      for (FakeScheduler* scheduler : schedulers_) scheduler->RunAll();
    }
  }

  // Waits until a model's failure has cancelled the request.
  bool AwaitCancelled() const {
    const absl::Time limit = absl::Now() + testing::kWaitLimit;
    while (!control_->cancelled()) {
      if (absl::Now() > limit) return false;
      absl::SleepFor(absl::Milliseconds(1));
    }
    return true;
  }

  FakeRepository repository_;
  std::vector<FakeScheduler*> schedulers_;  // owned by the models
  std::unique_ptr<Analyzer> analyzer_;
  const std::shared_ptr<RequestControl> control_ =
      std::make_shared<RequestControl>(7, Priority::kInteractive,
                                       absl::InfiniteFuture());
  std::thread request_;
  absl::Notification done_;
  absl::StatusOr<v1::AnalyzeResponse> result_;
};

TEST_F(AnalyzerTest, RunsEveryRequestedModelOverTheWholeAudio) {
  AddModel("a", /*auto_run=*/true);
  AddModel("b", /*auto_run=*/true);
  const Analyzer& analyzer = MakeAnalyzer();
  absl::StatusOr<v1::AnalyzeResponse> response =
      analyzer.Analyze(Wav(1.0), Models({"b", "a"}), control_);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 2);
  EXPECT_EQ(response->results(0).model(), "b");
  EXPECT_EQ(response->results(1).model(), "a");
  EXPECT_EQ(response->results(0).num_segments(), 10);
  EXPECT_EQ(response->results(1).num_segments(), 10);
}

// A model's own error wins over the cancellation it causes in the request's
// other models, wherever the failing model stands in the request.
class FailingModelFirstOrLastTest
    : public AnalyzerTest,
      public ::testing::WithParamInterface<std::vector<std::string>> {};

TEST_P(FailingModelFirstOrLastTest, ItsErrorIsTheRequestsError) {
  FakeScheduler* broken = AddModel("broken", /*auto_run=*/true);
  FakeScheduler* healthy = AddModel("healthy", /*auto_run=*/false);
  const absl::Status failure = absl::InternalError("model 'broken' failed");
  broken->FailSegment(0, failure);
  MakeAnalyzer();
  Start(Wav(1.0), Models(GetParam()));
  // The healthy model's segments (if the failure left it any) are held
  // until the failure has cancelled the request: each is answered
  // CANCELLED.
  ASSERT_TRUE(AwaitCancelled());
  AnswerUntilDone();
  EXPECT_EQ(Join().status(), failure);
  EXPECT_EQ(healthy->held(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Order, FailingModelFirstOrLastTest,
    ::testing::Values(std::vector<std::string>{"broken", "healthy"},
                      std::vector<std::string>{"healthy", "broken"}));

// Two models failing on their own: the request reports the error of the
// one it names first, whichever failed first in time.
TEST_F(AnalyzerTest, OfTwoFailingModelsTheOneNamedFirstIsReported) {
  FakeScheduler* a = AddModel("a", /*auto_run=*/false);
  FakeScheduler* b = AddModel("b", /*auto_run=*/false);
  const absl::Status a_failure = absl::InternalError("model 'a' failed");
  const absl::Status b_failure = absl::DataLossError("model 'b' failed");
  a->FailSegment(0, a_failure);
  b->FailSegment(0, b_failure);
  MakeAnalyzer();
  Start(Wav(1.0), Models({"b", "a"}));
  ASSERT_TRUE(a->AwaitHeld(10));
  ASSERT_TRUE(b->AwaitHeld(10));
  a->RunOldest(1);  // a fails first in time...
  a->RunAll();
  b->RunAll();
  // ... but b is named first in the request.
  EXPECT_EQ(Join().status(), b_failure);
}

TEST_F(AnalyzerTest, AFailureThatStopsTheDecodeIsReportedNotTheStop) {
  FakeScheduler* broken = AddModel("broken", /*auto_run=*/true);
  const absl::Status failure = absl::InternalError("model 'broken' failed");
  broken->FailSegment(0, failure);
  AnalyzerOptions options;
  options.prebuffer_seconds = 0;  // stream: segments queue while decoding
  options.max_in_flight_segments = 2;
  const Analyzer& analyzer = MakeAnalyzer(options);
  EXPECT_EQ(analyzer.Analyze(Wav(3.0), Models({"broken"}), control_).status(),
            failure);
  // The decode stopped at the failure: far fewer than the 30 segments.
  EXPECT_LE(broken->accepted(), 2);
}

TEST_F(AnalyzerTest, CancellingMidDecodeQueuesNothingMore) {
  FakeScheduler* model = AddModel("m", /*auto_run=*/false);
  AnalyzerOptions options;
  options.prebuffer_seconds = 0;
  options.max_in_flight_segments = 2;
  MakeAnalyzer(options);
  Start(Wav(3.0), Models({"m"}));
  ASSERT_TRUE(model->AwaitHeld(2));
  ASSERT_TRUE(model->AwaitStalled());  // the decoder waits for room
  control_->Cancel();
  model->RunAll();
  EXPECT_EQ(Join().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(model->accepted(), 2);
}

TEST_F(AnalyzerTest, ACancelledRequestQueuesNothing) {
  FakeScheduler* model = AddModel("m", /*auto_run=*/true);
  const Analyzer& analyzer = MakeAnalyzer();
  control_->Cancel();
  EXPECT_EQ(analyzer.Analyze(Wav(1.0), Models({"m"}), control_).status().code(),
            absl::StatusCode::kCancelled);
  EXPECT_EQ(model->accepted(), 0);
}

}  // namespace
}  // namespace audiotag
