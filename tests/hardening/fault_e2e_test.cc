// Fault injection against the real audiotag-server: a model whose forward
// throws (a TorchScript `assert` that always fails: Module::define does not
// know `raise Exception`), a model that runs far past the caller's deadline,
// and a model folder deleted while the server serves. In each case the failure
// stays with the faulty model: the other models keep answering and the server
// keeps running.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/hardening/hostile_inputs.h"
#include "tests/model/test_models.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using Code = grpc::StatusCode;
using ::testing::HasSubstr;

// A waveform model config at 16 kHz, 1 s segments, one EMBEDDING output of 4,
// without warm-up (so that a model that fails at run time still loads).
std::string NoWarmupConfig() {
  return R"pb(
    input {
      sample_rate: 16000
      waveform {}
    }
    segment { window_samples: 16000 }
    output { name: "e" kind: EMBEDDING dim: 4 }
    batching { max_batch_size: 4 max_queue_delay_us: 1000 }
    warmup_batches: 0
  )pb";
}

constexpr char kThrowingForward[] = R"(
def forward(self, x):
    assert x.size(0) < 0, "injected fault in forward"
    return x[:, :4]
)";

// Millions of tiny TorchScript ops: seconds of work no deadline interrupts.
constexpr char kSlowForward[] = R"(
def forward(self, x):
    y = x[:, :4]
    for i in range(3000000):
        y = y + 0.0
    return y
)";

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

class FaultE2E : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& flags = {}) {
    auto server = ServerProcess::Start(repository_, flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = MakeStub(server_->address());
  }

  grpc::Status AnalyzeWith(const std::string& model,
                           double timeout_seconds = 60,
                           v1::AnalyzeResponse* response = nullptr) {
    v1::AnalyzeOptions options;
    options.add_models(model);
    v1::AnalyzeResponse ignored;
    return CallAnalyze(*stub_, GoodWav(), options,
                       response ? response : &ignored, timeout_seconds);
  }

  void ExpectAlive() {
    ASSERT_EQ(kill(server_->pid(), 0), 0) << "server died:\n" << server_->Log();
  }

  std::string repository_ = NewTempDir("audiotag-fault-models");
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::AudioTagger::Stub> stub_;
};

TEST_F(FaultE2E, ThrowingForwardIsInternalNamingTheModel) {
  WriteStatsModel(repository_, "stats");
  WriteModelFolder(repository_, "thrower", NoWarmupConfig(), 0, 1,
                   kThrowingForward);
  StartServer();
  for (int i = 0; i < 3; ++i) {
    grpc::Status status = AnalyzeWith("thrower");
    EXPECT_EQ(status.error_code(), Code::INTERNAL) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("thrower"));
    ASSERT_TRUE(AnalyzeWith("stats").ok());
  }
  // Both at once: the request fails with the thrower's error, not a vague one.
  v1::AnalyzeOptions both;
  both.add_models("stats");
  both.add_models("thrower");
  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(*stub_, GoodWav(), both, &response);
  EXPECT_EQ(status.error_code(), Code::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("thrower"));
  ASSERT_TRUE(AnalyzeWith("stats").ok());
  ExpectAlive();
}

TEST_F(FaultE2E, SlowForwardMeetsTheDeadlineAndOthersKeepServing) {
  WriteStatsModel(repository_, "stats");
  WriteModelFolder(repository_, "sleeper", NoWarmupConfig(), 0, 1,
                   kSlowForward);
  StartServer();
  for (int i = 0; i < 2; ++i) {
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = AnalyzeWith("sleeper", /*timeout_seconds=*/1.0);
    const double took = SecondsSince(start);
    EXPECT_EQ(status.error_code(), Code::DEADLINE_EXCEEDED)
        << status.error_message();
    EXPECT_LT(took, 3.0) << "the deadline was not honoured promptly";
    // The sleeper's instance is still busy: other models must not wait on it.
    const auto other = std::chrono::steady_clock::now();
    grpc::Status stats = AnalyzeWith("stats", 30);
    EXPECT_TRUE(stats.ok()) << stats.error_message();
    EXPECT_LT(SecondsSince(other), 5);
  }
  ExpectAlive();
}

TEST_F(FaultE2E, DeletedModelFolderIsNotFoundAndOthersKeepServing) {
  WriteStatsModel(repository_, "stats");
  WriteStatsModel(repository_, "victim");
  StartServer({"--poll_interval_seconds=1"});
  ASSERT_TRUE(AnalyzeWith("victim").ok());

  // Traffic to both models while the folder disappears.
  std::atomic<bool> stop{false};
  std::atomic<int> stats_ok{0}, stats_failed{0}, victim_other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      auto stub = MakeStub(server_->address());
      v1::AnalyzeOptions options;
      options.add_models(t % 2 == 0 ? "stats" : "victim");
      while (!stop.load()) {
        v1::AnalyzeResponse response;
        grpc::Status s = CallAnalyze(*stub, GoodWav(), options, &response, 30);
        if (t % 2 == 0) {
          (s.ok() ? stats_ok : stats_failed)++;
        } else if (!s.ok() && s.error_code() != Code::NOT_FOUND) {
          victim_other++;
          ADD_FAILURE() << "victim request: " << s.error_code() << " "
                        << s.error_message();
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::filesystem::remove_all(repository_ + "/victim");

  const auto start = std::chrono::steady_clock::now();
  grpc::Status status;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    status = AnalyzeWith("victim");
  } while (status.ok() && SecondsSince(start) < 15);
  EXPECT_EQ(status.error_code(), Code::NOT_FOUND) << status.error_message();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  stop = true;
  for (auto& c : clients) c.join();

  EXPECT_GT(stats_ok.load(), 0);
  EXPECT_EQ(stats_failed.load(), 0);
  EXPECT_EQ(victim_other.load(), 0);
  EXPECT_EQ(AnalyzeWith("victim").error_code(), Code::NOT_FOUND);
  EXPECT_TRUE(AnalyzeWith("stats").ok());

  // The folder comes back: the next rescan serves it again.
  WriteStatsModel(repository_, "victim", 2);
  const auto back = std::chrono::steady_clock::now();
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    status = AnalyzeWith("victim");
  } while (!status.ok() && SecondsSince(back) < 20);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ExpectAlive();
}

}  // namespace
}  // namespace audiotag::testing
