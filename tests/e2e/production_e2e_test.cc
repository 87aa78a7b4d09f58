// End-to-end checks of what operators rely on: TLS and mutual TLS, bearer
// tokens, Prometheus metrics, and a SIGTERM drain that loses no accepted call.
// Each test starts its own real audiotag-server.

#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/e2e/e2e_metrics.h"
#include "tests/model/test_models.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using ::testing::HasSubstr;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string MakeRepository() {
  const std::string root = NewTempDir("audiotag-prod-models");
  WriteStatsModel(root, "stats");
  return root;
}

grpc::Status ListModels(std::shared_ptr<grpc::ChannelCredentials> credentials,
                        const std::string& address,
                        const std::string& token = "") {
  auto stub =
      v1::AudioTagger::NewStub(grpc::CreateChannel(address, credentials));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::ListModelsResponse response;
  return stub->ListModels(&context, {}, &response);
}

TEST(ProductionE2E, ServesTls) {
  absl::StatusOr<Pki> made = MakePki();
  ASSERT_TRUE(made.ok()) << made.status();
  const Pki& pki = *made;
  auto server = ServerProcess::Start(
      MakeRepository(),
      {"--tls_cert=" + pki.server_cert(), "--tls_key=" + pki.server_key()});
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = Slurp(pki.ca());
  EXPECT_TRUE(ListModels(grpc::SslCredentials(ssl), (*server)->address()).ok());
  // A plaintext client cannot talk to a TLS server.
  EXPECT_FALSE(
      ListModels(grpc::InsecureChannelCredentials(), (*server)->address())
          .ok());
}

TEST(ProductionE2E, MutualTlsRequiresAClientCertificate) {
  absl::StatusOr<Pki> made = MakePki();
  ASSERT_TRUE(made.ok()) << made.status();
  const Pki& pki = *made;
  auto server =
      ServerProcess::Start(MakeRepository(), {"--tls_cert=" + pki.server_cert(),
                                              "--tls_key=" + pki.server_key(),
                                              "--tls_client_ca=" + pki.ca()});
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::SslCredentialsOptions anonymous;
  anonymous.pem_root_certs = Slurp(pki.ca());
  EXPECT_FALSE(
      ListModels(grpc::SslCredentials(anonymous), (*server)->address()).ok());
  grpc::SslCredentialsOptions with_cert = anonymous;
  with_cert.pem_cert_chain = Slurp(pki.client_cert());
  with_cert.pem_private_key = Slurp(pki.client_key());
  EXPECT_TRUE(
      ListModels(grpc::SslCredentials(with_cert), (*server)->address()).ok());
}

TEST(ProductionE2E, BearerTokenAuth) {
  const std::string dir = NewTempDir("audiotag-tokens");
  WriteTextFile(dir + "/tokens", "# operators\nsecret-one\n\nsecret-two\n");
  auto server = ServerProcess::Start(MakeRepository(),
                                     {"--auth_token_file=" + dir + "/tokens"});
  ASSERT_TRUE(server.ok()) << server.status();
  const auto insecure = grpc::InsecureChannelCredentials();
  const std::string address = (*server)->address();
  grpc::Status none = ListModels(insecure, address);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("Bearer"));
  EXPECT_EQ(ListModels(insecure, address, "wrong").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(ListModels(insecure, address, "secret-two").ok());

  // Analyze is guarded too.
  auto stub = MakeStub(address);
  auto audio = MakeAudioFile(AudioSpec());
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeResponse response;
  EXPECT_EQ(CallAnalyze(*stub, *audio, {}, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Health stays open for probes.
  auto health =
      grpc::health::v1::Health::NewStub(grpc::CreateChannel(address, insecure));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse status;
  ASSERT_TRUE(health->Check(&context, request, &status).ok());
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(
    const std::string& address, const std::string& service) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  if (!health->Check(&context, request, &response).ok()) {
    return grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN;
  }
  return response.status();
}

TEST(ProductionE2E, ReadinessWaitsForRequiredModels) {
  const std::string repository = MakeRepository();
  using Status = grpc::health::v1::HealthCheckResponse;
  {
    auto server = ServerProcess::Start(
        repository, {"--required_models=stats,not_there_yet"});
    ASSERT_TRUE(server.ok()) << server.status();
    EXPECT_EQ(Health((*server)->address(), ""), Status::NOT_SERVING);
    EXPECT_EQ(Health((*server)->address(), "stats"), Status::SERVING);
  }
  auto server = ServerProcess::Start(repository, {"--required_models=stats"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(Health((*server)->address(), ""), Status::SERVING);
  EXPECT_EQ(Health((*server)->address(), "audiotag.v1.AudioTagger"),
            Status::SERVING);
}

TEST(ProductionE2E, RejectsBadSecurityFlags) {
  auto server = ServerProcess::Start(
      MakeRepository(),
      {"--tls_cert=/nonexistent/cert.pem", "--tls_key=/nonexistent/key.pem"},
      absl::Seconds(20));
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("cert.pem"));
}

TEST(ProductionE2E, ExportsPrometheusMetricsAfterTraffic) {
  const int metrics_port = PickFreePort();
  auto server = ServerProcess::Start(
      MakeRepository(), {absl::StrCat("--metrics_port=", metrics_port)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  AudioSpec spec;
  spec.seconds = 3;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeResponse response;
  for (int i = 0; i < 3; ++i) {
    grpc::Status s = CallAnalyze(*stub, *audio, {}, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::AnalyzeOptions unknown;
  unknown.add_models("nope");
  EXPECT_FALSE(CallAnalyze(*stub, *audio, unknown, &response).ok());

  std::string text;
  for (int attempt = 0; attempt < 40; ++attempt) {
    text = ScrapeMetricsText(metrics_port);
    if (absl::StrContains(text, "audiotag_model_ready")) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(text, HasSubstr("audiotag_requests_total{code=\"OK\",method="
                              "\"Analyze\",model=\"stats\"} 3"));
  EXPECT_THAT(text, HasSubstr("code=\"NOT_FOUND\""));
  EXPECT_THAT(text, HasSubstr("audiotag_request_duration_seconds_count"));
  EXPECT_THAT(text, HasSubstr("audiotag_decode_duration_seconds_count 3"));
  EXPECT_THAT(text, HasSubstr("audiotag_queue_duration_seconds_count{model="
                              "\"stats\"} 9"));
  EXPECT_THAT(text, HasSubstr("audiotag_batch_size_bucket{model=\"stats\""));
  EXPECT_THAT(text, HasSubstr("audiotag_compute_duration_seconds"));
  EXPECT_THAT(text, HasSubstr("audiotag_frontend_duration_seconds"));
  EXPECT_THAT(text, HasSubstr("audiotag_queue_depth{model=\"stats\"}"));
  EXPECT_THAT(text,
              HasSubstr("audiotag_audio_seconds_total{model=\"stats\"} 9"));
  EXPECT_THAT(text, HasSubstr("audiotag_model_ready{model=\"stats\"} 1"));
  EXPECT_THAT(text, HasSubstr("audiotag_model_version{model=\"stats\"} 1"));
  EXPECT_THAT(text, HasSubstr("audiotag_build_info{version="));
}

// A model slow enough (matrix products per batch) that calls are in flight
// when SIGTERM arrives.
void WriteSlowModel(const std::string& root) {
  WriteModelFolder(root, "slow", R"pb(
                     input {
                       sample_rate: 16000
                       waveform {}
                     }
                     segment { window_samples: 16000 }
                     output { name: "e" kind: EMBEDDING dim: 4 }
                     batching { max_batch_size: 4 }
                   )pb",
                   0, 1, R"(
def forward(self, x):
    w = torch.ones(256, 256) / 256.0
    y = torch.ones(256, 256)
    for i in range(40):
        y = torch.mm(y, w)
    return x[:, :4] + y[0, 0] * 0.0
)");
}

TEST(ProductionE2E, SigtermDrainsWithoutFailingAcceptedCalls) {
  const std::string root = NewTempDir("audiotag-drain-models");
  WriteSlowModel(root);
  auto server = ServerProcess::Start(root, {"--grace_period_seconds=30"});
  ASSERT_TRUE(server.ok()) << server.status();
  AudioSpec spec;
  spec.seconds = 4;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());

  std::atomic<int> ok{0}, refused{0}, other{0};
  std::atomic<bool> stop{false};
  std::vector<std::string> failures;
  absl::Mutex mu;
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      auto stub = MakeStub((*server)->address());
      while (!stop.load()) {
        v1::AnalyzeResponse response;
        grpc::Status s = CallAnalyze(*stub, *audio, {}, &response, 60);
        if (s.ok()) {
          ++ok;
        } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
          ++refused;  // not accepted: draining, or the port already closed
          absl::SleepFor(absl::Milliseconds(20));
        } else {
          ++other;
          absl::MutexLock lock(&mu);
          failures.push_back(s.error_message());
        }
      }
    });
  }
  while (ok.load() < 8) absl::SleepFor(absl::Milliseconds(10));
  auto code = (*server)->Terminate(absl::Seconds(60));
  stop = true;
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(other.load(), 0) << ::testing::PrintToString(failures);
  // Every call the server accepted finished with OK: its log has one line
  // per accepted analysis, with the code.
  const std::string log = (*server)->Log();
  int logged = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (!absl::StrContains(line, "msg=request")) continue;
    ++logged;
    EXPECT_THAT(std::string(line), HasSubstr("code=OK"));
  }
  EXPECT_EQ(logged, ok.load());
  EXPECT_THAT(log, HasSubstr("msg=draining"));
  EXPECT_THAT(log, HasSubstr("msg=stopped"));
}

}  // namespace
}  // namespace audiotag::testing
