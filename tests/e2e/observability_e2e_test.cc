// What an operator sees of the real audiotag-server: every RPC counted by
// method and code (health, ListModels, GetModel, UNAUTHENTICATED calls
// included), process metrics and in-flight gauges on /metrics, log lines for
// calls that never reach an analysis, bounded series and log lines for hostile
// model names and request ids, the "liveness" health service, and an honest
// Timing.compute_seconds.
#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/e2e/e2e_metrics.h"
#include "tests/model/test_models.h"
#include "tests/testutil/audio_files.h"

namespace audiotag::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using HealthStatus = grpc::health::v1::HealthCheckResponse;

std::string Audio(double seconds) {
  AudioSpec spec;
  spec.seconds = seconds;
  absl::StatusOr<std::string> audio = MakeAudioFile(spec);
  EXPECT_TRUE(audio.ok()) << audio.status();
  return audio.ok() ? *audio : "";
}

HealthStatus::ServingStatus CheckHealth(const std::string& address,
                                        const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  HealthStatus reply;
  grpc::Status status = stub->Check(&context, request, &reply);
  EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
  return reply.status();
}

// The value of `series` in a fresh scrape, or -1.
double Scrape(int port, const std::string& series) {
  return MetricValue(ScrapeMetricsText(port), series).value_or(-1);
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (absl::StrContains(line, needle)) ++n;
  }
  return n;
}

TEST(ObservabilityE2E, LivenessServesWithAnEmptyRepository) {
  const std::string root = NewTempDir("obs-empty");
  auto server = ServerProcess::Start(root);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(CheckHealth((*server)->address(), ""), HealthStatus::NOT_SERVING);
  EXPECT_EQ(CheckHealth((*server)->address(), "audiotag.v1.AudioTagger"),
            HealthStatus::NOT_SERVING);
  EXPECT_EQ(CheckHealth((*server)->address(), "liveness"),
            HealthStatus::SERVING);
}

TEST(ObservabilityE2E, EveryRpcIsCountedAndRefusedCallsAreLogged) {
  const std::string dir = NewTempDir("obs-auth");
  WriteTextFile(dir + "/tokens", "s3cret\n");
  const int metrics_port = PickFreePort();
  auto server = ServerProcess::Start(
      MakeE2ERepository(), {absl::StrCat("--metrics_port=", metrics_port),
                            "--auth_token_file=" + dir + "/tokens"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  {
    grpc::ClientContext context;
    v1::ListModelsResponse reply;
    EXPECT_EQ(stub->ListModels(&context, {}, &reply).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer s3cret");
    v1::ListModelsResponse reply;
    EXPECT_TRUE(stub->ListModels(&context, {}, &reply).ok());
  }
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer s3cret");
    v1::GetModelRequest request;
    request.set_name("nope");
    v1::ModelInfo reply;
    EXPECT_EQ(stub->GetModel(&context, request, &reply).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    v1::AnalyzeResponse reply;
    EXPECT_EQ(CallAnalyze(*stub, Audio(1), {}, &reply).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(CheckHealth((*server)->address(), "liveness"),
            HealthStatus::SERVING);

  const std::string text = ScrapeMetricsText(metrics_port);
  const auto calls = [&](const std::string& method, const std::string& code) {
    return MetricValue(text, absl::StrCat("audiotag_grpc_calls_total{code=\"",
                                          code, "\",method=\"", method, "\"}"))
        .value_or(0);
  };
  EXPECT_EQ(calls("/audiotag.v1.AudioTagger/ListModels", "UNAUTHENTICATED"), 1)
      << text;
  EXPECT_EQ(calls("/audiotag.v1.AudioTagger/ListModels", "OK"), 2);
  EXPECT_EQ(calls("/audiotag.v1.AudioTagger/GetModel", "NOT_FOUND"), 1);
  EXPECT_EQ(calls("/audiotag.v1.AudioTagger/Analyze", "UNAUTHENTICATED"), 1);
  EXPECT_EQ(calls("/grpc.health.v1.Health/Check", "OK"), 1) << text;
  EXPECT_EQ(MetricValue(text,
                        "audiotag_grpc_calls_in_flight{method=\"/"
                        "audiotag.v1.AudioTagger/ListModels\"}"),
            0);
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes").value_or(0),
            1 << 20);
  EXPECT_GT(MetricValue(text, "process_open_fds").value_or(0), 2);
  EXPECT_GT(MetricValue(text, "process_max_fds").value_or(0), 2);
  EXPECT_GT(MetricValue(text, "process_cpu_seconds_total").value_or(0), 0);
  EXPECT_GT(MetricValue(text, "process_start_time_seconds").value_or(0), 1.6e9);

  const std::string log = (*server)->Log();
  EXPECT_THAT(log, HasSubstr("msg=call method=ListModels"));
  EXPECT_EQ(CountLines(log, "msg=call method=ListModels"), 3) << log;
  EXPECT_THAT(log, HasSubstr("msg=call method=GetModel"));
  EXPECT_EQ(CountLines(log, "method=Analyze peer="), 1) << log;
  EXPECT_EQ(CountLines(log, "code=UNAUTHENTICATED"), 2) << log;
}

TEST(ObservabilityE2E, DefaultRequestsLogTheModelsTheyUsed) {
  auto server = ServerProcess::Start(MakeE2ERepository());
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  v1::AnalyzeResponse reply;
  grpc::Status status = CallAnalyze(*stub, Audio(2), {}, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT((*server)->Log(), HasSubstr("models=stats default_models=true"));
}

TEST(ObservabilityE2E, UnknownModelNamesAreBoundedInSeriesAndLog) {
  const int metrics_port = PickFreePort();
  auto server = ServerProcess::Start(
      MakeE2ERepository(), {absl::StrCat("--metrics_port=", metrics_port)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  const std::string audio = Audio(1);
  const size_t log_before = (*server)->Log().size();
  const int series_before =
      CountLines(ScrapeMetricsText(metrics_port), "model=");

  v1::AnalyzeOptions many;
  for (int i = 0; i < 100000; ++i) many.add_models(absl::StrCat("nope-", i));
  v1::AnalyzeResponse reply;
  grpc::Status status = CallAnalyze(*stub, audio, many, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("at most 64"));

  v1::AnalyzeOptions few;
  for (int i = 0; i < 10; ++i) few.add_models(absl::StrCat("other-", i));
  status = CallAnalyze(*stub, audio, few, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  const std::string text = ScrapeMetricsText(metrics_port);
  EXPECT_THAT(text, Not(HasSubstr("nope-")));
  EXPECT_THAT(text, Not(HasSubstr("other-")));
  EXPECT_THAT(text, HasSubstr("model=\"(unknown)\""));
  // One model label value ("(unknown)") more, a few series each.
  EXPECT_LT(CountLines(text, "model=") - series_before, 60)
      << "series grow with names";
  const std::string log = (*server)->Log();
  EXPECT_LT(log.size() - log_before, 16u << 10) << "log grows with names";
  EXPECT_THAT(log, HasSubstr("truncated=true"));
}

TEST(ObservabilityE2E, ControlCharactersInRequestIdAreEscapedInTheLog) {
  auto server = ServerProcess::Start(MakeE2ERepository());
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  v1::AnalyzeOptions options;
  options.add_models("stats");
  options.set_request_id("abc\r\nts=forged level=error msg=pwned");
  v1::AnalyzeResponse reply;
  ASSERT_TRUE(CallAnalyze(*stub, Audio(1), options, &reply).ok());
  const std::string log = (*server)->Log();
  EXPECT_THAT(log, HasSubstr("request_id=\"abc\\r\\nts=forged"));
  EXPECT_EQ(log.find('\r'), std::string::npos);
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "ts=forged")) << line;
  }
}

// Forward time ~tens of ms per batch; the 10 segments of a 10 s clip share
// one or a few batches.
void WriteMatmulModel(const std::string& root) {
  WriteModelFolder(root, "matmul", R"pb(
                     input {
                       sample_rate: 16000
                       waveform {}
                     }
                     segment { window_samples: 16000 }
                     output { name: "e" kind: EMBEDDING dim: 4 }
                     batching { max_batch_size: 16 max_queue_delay_us: 100000 }
                   )pb",
                   0, 1, R"(
def forward(self, x):
    w = torch.ones(256, 256) / 256.0
    y = torch.ones(256, 256)
    for i in range(60):
        y = torch.mm(y, w)
    return x[:, :4] + y[0, 0] * 0.0
)");
}

TEST(ObservabilityE2E, ComputeSecondsNeverExceedsWallTimeTimesInstances) {
  const std::string root = NewTempDir("obs-compute");
  WriteMatmulModel(root);
  auto server = ServerProcess::Start(root);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  v1::AnalyzeOptions options;
  options.add_models("matmul");
  const std::string audio = Audio(10);
  for (int i = 0; i < 3; ++i) {
    v1::AnalyzeResponse reply;
    grpc::Status status = CallAnalyze(*stub, audio, options, &reply);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(reply.results(0).num_segments(), 10);
    const v1::Timing& t = reply.timing();
    EXPECT_GT(t.compute_seconds(), 0);
    // One instance runs this model.
    EXPECT_LE(t.compute_seconds(), t.total_seconds() * 1)
        << "compute " << t.compute_seconds() << " s in " << t.total_seconds()
        << " s of wall time";
  }
}

}  // namespace
}  // namespace audiotag::testing
