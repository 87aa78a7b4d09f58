// Hot reload under load against the real audiotag-server (polling every
// second): a version published the safe way (written elsewhere on the same
// filesystem, then renamed into place) takes over with no failed request, and
// a broken new version leaves the old one serving.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/model/test_models.h"
#include "tests/testutil/audio_files.h"

namespace audiotag::testing {
namespace {

namespace fs = std::filesystem;

using ::testing::HasSubstr;
using ::testing::Not;

// "gain" version v: EMBEDDING "e" = [v * rms] of each 1 s segment, so every
// response tells which version computed it.
std::string GainForward(int v) {
  return absl::StrCat("def forward(self, x):\n    return ", v,
                      ".0 * x.pow(2).mean(1, keepdim=True).sqrt()\n");
}

void WriteGainModel(const std::string& root) {
  WriteModelFolder(
      root, "gain",
      WaveformConfig(16000,
                     "output { name: \"e\" kind: EMBEDDING dim: 1 }\n"
                     "batching { max_batch_size: 4 "
                     "max_queue_delay_us: 500 }\n"),
      0, 1, GainForward(1));
}

// Writes version `version` under <root>/.staging, then renames it into
// <root>/gain/<version>: the scanner sees no version or a complete one.
void PublishVersion(const std::string& root, int version,
                    const std::string& forward, bool corrupt = false) {
  const fs::path staging =
      fs::path(root) / ".staging" / std::to_string(version);
  if (corrupt) {
    WriteTextFile((staging / "model.pt").string(), "truncated garbage");
  } else {
    SaveScriptModule((staging / "model.pt").string(), forward);
  }
  fs::rename(staging, fs::path(root) / "gain" / std::to_string(version));
}

std::string SineAudio() {
  AudioSpec spec;
  spec.seconds = 2.0;
  absl::StatusOr<std::string> audio = MakeAudioFile(spec);
  EXPECT_TRUE(audio.ok()) << audio.status();
  return audio.ok() ? *audio : "";
}

v1::AnalyzeOptions GainRequest() {
  v1::AnalyzeOptions options;
  options.add_models("gain");
  return options;
}

// What the client threads saw.
struct Observed {
  absl::Mutex mu;
  int ok ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> failures ABSL_GUARDED_BY(mu);
  std::vector<std::string> mismatches ABSL_GUARDED_BY(mu);
  absl::Time first_v2 ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  int v1_after_v2 ABSL_GUARDED_BY(mu) = 0;
};

void Record(const grpc::Status& status, const v1::AnalyzeResponse& response,
            Observed* seen) {
  absl::MutexLock lock(&seen->mu);
  if (!status.ok()) {
    seen->failures.push_back(status.error_message());
    return;
  }
  ++seen->ok;
  const v1::ModelResult& r = response.results(0);
  const float value = r.outputs(0).pooled().values(0);
  const double rms = 0.5 / std::sqrt(2.0);
  if (std::abs(value - r.version() * rms) > 5e-3) {
    seen->mismatches.push_back(
        absl::StrCat("version ", r.version(), " returned ", value));
  }
  if (r.version() == 2) {
    seen->first_v2 = std::min(seen->first_v2, absl::Now());
  }
}

TEST(HotReloadE2E, SafePublishSwitchesVersionsWithoutFailures) {
  const std::string root = NewTempDir("hot-reload-models");
  WriteGainModel(root);
  auto server = ServerProcess::Start(root, {"--poll_interval_seconds=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string audio = SineAudio();

  Observed seen;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&] {
      auto stub = MakeStub((*server)->address());
      while (!stop.load()) {
        v1::AnalyzeResponse response;
        Record(CallAnalyze(*stub, audio, GainRequest(), &response, 30),
               response, &seen);
      }
    });
  }
  absl::SleepFor(absl::Seconds(1.5));
  const absl::Time published = absl::Now();
  PublishVersion(root, 2, GainForward(2));
  const auto switched = [&seen]() ABSL_SHARED_LOCKS_REQUIRED(seen.mu) {
    return seen.first_v2 != absl::InfiniteFuture();
  };
  {
    absl::MutexLock lock(&seen.mu);
    seen.mu.AwaitWithTimeout(absl::Condition(&switched), absl::Seconds(20));
  }
  absl::SleepFor(absl::Seconds(1));
  stop = true;
  for (std::thread& t : clients) t.join();

  absl::MutexLock lock(&seen.mu);
  EXPECT_GT(seen.ok, 10);
  EXPECT_THAT(seen.failures, ::testing::IsEmpty());
  EXPECT_THAT(seen.mismatches, ::testing::IsEmpty());
  ASSERT_NE(seen.first_v2, absl::InfiniteFuture()) << "never saw version 2";
  EXPECT_LT(seen.first_v2 - published, absl::Seconds(5));
}

TEST(HotReloadE2E, BrokenNewVersionKeepsTheOldOneServing) {
  const std::string root = NewTempDir("hot-reload-broken");
  WriteGainModel(root);
  auto server = ServerProcess::Start(root, {"--poll_interval_seconds=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  PublishVersion(root, 2, "", /*corrupt=*/true);

  v1::ModelInfo info;
  for (int attempt = 0; attempt < 100; ++attempt) {
    grpc::ClientContext context;
    v1::GetModelRequest request;
    request.set_name("gain");
    ASSERT_TRUE(stub->GetModel(&context, request, &info).ok());
    if (absl::StrContains(info.state_reason(), "failed to load")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(info.state(), v1::READY);
  EXPECT_EQ(info.version(), 1);
  EXPECT_THAT(info.state_reason(),
              HasSubstr("version 2 failed to load; still serving version 1"));
  const std::string log = (*server)->Log();
  EXPECT_THAT(log, HasSubstr("msg=model event=loaded name=gain version=1"));
  EXPECT_THAT(log, HasSubstr("msg=model event=failed name=gain version=2 "
                             "serving_version=1"));

  v1::AnalyzeResponse response;
  grpc::Status status =
      CallAnalyze(*stub, SineAudio(), GainRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.results(0).version(), 1);

  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  for (const char* service : {"", "gain"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse reply;
    ASSERT_TRUE(health->Check(&context, request, &reply).ok()) << service;
    EXPECT_EQ(reply.status(), grpc::health::v1::HealthCheckResponse::SERVING)
        << service;
  }
}

TEST(HotReloadE2E, EveryLifecycleChangeIsLoggedWithItsReason) {
  const std::string root = NewTempDir("hot-reload-lifecycle");
  WriteGainModel(root);
  auto server = ServerProcess::Start(root, {"--poll_interval_seconds=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const auto wait_for_log = [&](const std::string& text) {
    for (int i = 0; i < 100 && !absl::StrContains((*server)->Log(), text);
         ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    return (*server)->Log();
  };
  EXPECT_THAT(wait_for_log("event=loaded name=gain"),
              HasSubstr("msg=model event=loaded name=gain version=1 seconds="));

  PublishVersion(root, 2, GainForward(2));
  EXPECT_THAT(wait_for_log("event=reloaded"),
              HasSubstr("msg=model event=reloaded name=gain version=2 "
                        "previous_version=1 seconds="));

  // A config that no longer parses: its parse error, not "version 0".
  WriteTextFile(root + "/gain/config.pbtxt",
                "input { sample_rate: 16000 waveform {} }\n"
                "segment { window_samples: 16000 colour: 2 }\n");
  const std::string log = wait_for_log("event=failed");
  EXPECT_THAT(log, HasSubstr("msg=model event=failed name=gain"));
  EXPECT_THAT(log, HasSubstr("colour"));
  EXPECT_THAT(log, HasSubstr("config.pbtxt"));
  EXPECT_THAT(log, Not(HasSubstr("version 0")));
  auto stub = MakeStub((*server)->address());
  grpc::ClientContext context;
  v1::GetModelRequest request;
  request.set_name("gain");
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModel(&context, request, &info).ok());
  EXPECT_EQ(info.state(), v1::READY);
  EXPECT_THAT(info.state_reason(), HasSubstr("still serving version 2"));
  EXPECT_THAT(info.state_reason(), HasSubstr("colour"));
  EXPECT_THAT(info.state_reason(), Not(HasSubstr("version 0")));

  fs::remove_all(fs::path(root) / "gain");
  EXPECT_THAT(wait_for_log("event=unloaded"),
              HasSubstr("msg=model event=unloaded name=gain version=2"));
}

// "wide": 3 s segments that drop a partial one (as VGGish does), longer than
// SineAudio's 2 s.
void WriteWideModel(const std::string& root, const std::string& name) {
  WriteModelFolder(
      root, name, R"pb(
        input {
          sample_rate: 16000
          waveform {}
        }
        segment { window_samples: 48000 last_segment: LAST_SEGMENT_DROP }
        output { name: "e" kind: EMBEDDING dim: 1 }
      )pb",
      0, 1, GainForward(7));
}

TEST(HotReloadE2E, HotAddedModelDoesNotChangeDefaultRequests) {
  const std::string root = NewTempDir("hot-reload-default");
  WriteGainModel(root);
  auto server = ServerProcess::Start(root, {"--poll_interval_seconds=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string audio = SineAudio();

  absl::Mutex mu;
  std::vector<std::string> unexpected;
  int ok = 0;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&] {
      auto stub = MakeStub((*server)->address());
      while (!stop.load()) {
        v1::AnalyzeResponse response;
        grpc::Status status = CallAnalyze(*stub, audio, {}, &response, 30);
        absl::MutexLock lock(&mu);
        if (!status.ok()) {
          unexpected.push_back(status.error_message());
        } else if (response.results_size() != 1 ||
                   response.results(0).model() != "gain" ||
                   response.skipped_size() != 0) {
          unexpected.push_back(response.ShortDebugString());
        } else {
          ++ok;
        }
      }
    });
  }
  absl::SleepFor(absl::Seconds(1));
  // One that would fail the 2 s clip, one that would add a result.
  WriteWideModel(root, "wide");
  WriteModelFolder(root, "extra",
                   WaveformConfig(16000,
                                  "output { name: \"e\" kind: EMBEDDING "
                                  "dim: 1 }\n"),
                   0, 1, GainForward(3));
  std::string log;
  for (int i = 0; i < 100; ++i) {
    log = (*server)->Log();
    if (absl::StrContains(log, "event=loaded name=wide") &&
        absl::StrContains(log, "event=loaded name=extra")) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  absl::SleepFor(absl::Seconds(1));
  stop = true;
  for (std::thread& t : clients) t.join();
  EXPECT_THAT(log, HasSubstr("msg=model event=loaded name=wide version=1"));
  EXPECT_THAT(log, HasSubstr("msg=model event=loaded name=extra version=1"));
  absl::MutexLock lock(&mu);
  EXPECT_GT(ok, 5);
  EXPECT_THAT(unexpected, ::testing::IsEmpty());

  // Named explicitly, the new models serve.
  auto stub = MakeStub((*server)->address());
  v1::AnalyzeOptions options;
  options.add_models("extra");
  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(*stub, audio, options, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST(HotReloadE2E, DefaultRequestSkipsAModelTheClipIsTooShortFor) {
  const std::string root = NewTempDir("default-too-short");
  WriteGainModel(root);
  WriteWideModel(root, "wide");
  auto server = ServerProcess::Start(root, {"--default_models=gain,wide"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  const std::string audio = SineAudio();

  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(*stub, audio, {}, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).model(), "gain");
  ASSERT_EQ(response.skipped_size(), 1);
  EXPECT_EQ(response.skipped(0).model(), "wide");
  EXPECT_THAT(response.skipped(0).reason(), HasSubstr("shorter than"));
  EXPECT_THAT((*server)->Log(), HasSubstr("skipped=wide"));

  // Named explicitly, a model the clip is too short for fails the call.
  v1::AnalyzeOptions options;
  options.add_models("gain");
  options.add_models("wide");
  status = CallAnalyze(*stub, audio, options, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("wide"));

  // Every default model too short: the call fails with the reason.
  AudioSpec spec;
  spec.seconds = 0.3;
  absl::StatusOr<std::string> tiny = MakeAudioFile(spec);
  ASSERT_TRUE(tiny.ok());
  auto only_wide = ServerProcess::Start(root, {"--default_models=wide"});
  ASSERT_TRUE(only_wide.ok()) << only_wide.status();
  auto stub2 = MakeStub((*only_wide)->address());
  status = CallAnalyze(*stub2, *tiny, {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("shorter than"));
}

}  // namespace
}  // namespace audiotag::testing
