// audiotag-server: serves the models of a model repository over gRPC.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/audiotag_service.h"
#include "server/call_metrics.h"
#include "server/metrics_http_server.h"
#include "server/reflection_v1.h"
#include "server/request_log.h"
#include "server/security.h"
#include "src/analysis/analyzer.h"
#include "src/common/command_line.h"
#include "src/common/status_macros.h"
#include "src/common/thread_pool.h"
#include "src/metrics/metrics.h"
#include "src/model/model_repository.h"

ABSL_FLAG(std::string, host, "127.0.0.1",
          "Address to listen on; 0.0.0.0 for every interface.");
ABSL_FLAG(int, port, 50051, "gRPC port; 0 picks a free one (see --port_file).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, model_repository, "models",
          "Folder of model folders (docs/model_repository.md).");
ABSL_FLAG(int64_t, max_upload_bytes, int64_t{256} << 20,
          "Largest audio upload accepted, in bytes.");
ABSL_FLAG(double, max_duration_seconds, 2 * 3600.0,
          "Longest decoded audio accepted, in seconds.");
ABSL_FLAG(int, max_message_bytes, 64 << 20,
          "Largest gRPC message accepted; bigger files use AnalyzeStream.");
ABSL_FLAG(int, analysis_threads, 32,
          "Requests analyzed at once (decode, segmenting, waiting on batches);"
          " more wait in a queue.");
ABSL_FLAG(double, prebuffer_seconds, 30,
          "Audio up to this long is decoded whole before its segments are "
          "queued, so a short file runs in as few batches as possible; "
          "longer audio streams. 0 streams everything.");
ABSL_FLAG(int, max_in_flight_segments, 64,
          "Most segments of one request queued per model at a time; keep "
          "analysis_threads x this under the models' max_queue_size.");
ABSL_FLAG(double, poll_interval_seconds, 0,
          "How often to rescan the model repository; 0 disables.");
ABSL_FLAG(int, intra_op_threads, 0,
          "LibTorch intra-op threads (0: LibTorch's default).");
ABSL_FLAG(double, grace_period_seconds, 30,
          "On SIGTERM, how long in-flight calls may take to finish.");
ABSL_FLAG(double, max_deadline_seconds, 0,
          "Ceiling on every call's deadline; 0 means none.");
ABSL_FLAG(int, max_inflight_requests, 512,
          "Analyses accepted at once; beyond it calls get RESOURCE_EXHAUSTED."
          " 0: no limit.");
ABSL_FLAG(int64_t, max_inflight_bytes, int64_t{1} << 30,
          "Memory budget of the calls in flight, in bytes: each is charged its"
          " upload (streams chunk by chunk) plus --analysis_bytes_estimate;"
          " a call that would pass it gets RESOURCE_EXHAUSTED at once."
          " 0: no limit.");
ABSL_FLAG(int64_t, analysis_bytes_estimate, int64_t{16} << 20,
          "Bytes one analysis holds besides its upload (decoded audio,"
          " segments, results), charged against --max_inflight_bytes.");
ABSL_FLAG(double, upload_timeout_seconds, 30,
          "An AnalyzeStream must send a message at least this often, and end"
          " its upload within this many seconds of the call's acceptance plus"
          " 1 s per --min_upload_bytes_per_second bytes received; else"
          " DEADLINE_EXCEEDED. 0: only the call's deadline bounds it.");
ABSL_FLAG(int64_t, min_upload_bytes_per_second, int64_t{64} << 10,
          "Slowest average upload rate an AnalyzeStream may keep, in bytes"
          " per second, past --upload_timeout_seconds.");
ABSL_FLAG(int64_t, grpc_memory_bytes, int64_t{1} << 30,
          "gRPC's memory quota, in bytes: buffers of messages still arriving"
          " (a unary Analyze is read whole before it can be admitted); under"
          " pressure gRPC shrinks windows and closes connections"
          " (UNAVAILABLE). 0: no quota.");
ABSL_FLAG(int, max_metadata_bytes, 8192,
          "Largest request metadata (all headers of a call), in bytes"
          " (gRPC's grpc.max_metadata_size).");
ABSL_FLAG(int, max_concurrent_streams, 256,
          "Concurrent calls per client connection (HTTP/2 streams).");
ABSL_FLAG(std::vector<std::string>, required_models, {},
          "Models that must be READY before the server reports SERVING "
          "(comma-separated); default: any one model.");
ABSL_FLAG(std::vector<std::string>, default_models, {},
          "Models a request without `models` runs (comma-separated); default: "
          "the models ready when the server starts, fixed from then on "
          "(docs/api.md, \"Default models\").");
ABSL_FLAG(int, metrics_port, 9464,
          "Port of the Prometheus /metrics endpoint; 0 disables it.");
ABSL_FLAG(std::string, metrics_host, "127.0.0.1",
          "Address of /metrics; 0.0.0.0 for every interface. It has no TLS"
          " or token: expose it only to the scraper (docs/hardening.md).");
ABSL_FLAG(double, metrics_idle_timeout_seconds, 10,
          "A /metrics connection silent this long is closed.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates it signed (mutual TLS).");
ABSL_FLAG(std::string, auth_token_file, "",
          "File of bearer tokens, one per line: every AudioTagger call must "
          "send 'authorization: Bearer <token>'. Health and reflection stay "
          "open.");

namespace audiotag {
namespace {

constexpr char kServiceName[] = "audiotag.v1.AudioTagger";
// SERVING from the moment the server accepts calls until it starts draining,
// whatever the models' state: what a liveness probe asks.
constexpr char kLivenessService[] = "liveness";

// One line per model load, reload, unload and failed load.
void LogModelEvent(const ModelEvent& event) {
  std::string line =
      absl::StrCat("msg=model event=", ModelEventKindName(event.kind),
                   " name=", LogQuote(event.model), " version=", event.version);
  if (event.kind == ModelEvent::Kind::kReloaded) {
    absl::StrAppend(&line, " previous_version=", event.previous_version);
  }
  if (event.kind == ModelEvent::Kind::kFailed) {
    absl::StrAppend(&line, " serving_version=", event.serving_version);
  }
  if (event.kind != ModelEvent::Kind::kUnloaded) {
    absl::StrAppend(&line,
                    absl::StrFormat(" seconds=%.3f",
                                    absl::ToDoubleSeconds(event.load_time)));
  }
  if (!event.reason.empty()) {
    absl::StrAppend(&line, " reason=", LogQuote(event.reason));
  }
  LogLine(event.kind == ModelEvent::Kind::kFailed ? "warn" : "info", line);
}

// Keeps grpc.health.v1 and the model metrics in step with the repository:
// each model name is SERVING while that model is ready; "" and the service
// name while every required model is ready (or, with none required, any
// model). Synced on Sync, and once a second between StartPeriodic and
// StopPeriodic.
class HealthReporter {
 public:
  // Every pointer must outlive the reporter.
  HealthReporter(const ModelRepository* repository,
                 std::vector<std::string> required,
                 grpc::HealthCheckServiceInterface* health, Metrics* metrics)
      : repository_(repository),
        required_(std::move(required)),
        health_(health),
        metrics_(metrics) {}
  ~HealthReporter() { StopPeriodic(); }

  HealthReporter(const HealthReporter&) = delete;
  HealthReporter& operator=(const HealthReporter&) = delete;

  // `draining`: every service NOT_SERVING, whatever the models' state.
  void Sync(bool draining = false) const {
    bool any_ready = false;
    int required_ready = 0;
    for (const v1::ModelInfo& info : repository_->List()) {
      const bool ready = info.state() == v1::READY;
      any_ready |= ready;
      if (ready && absl::c_linear_search(required_, info.name())) {
        ++required_ready;
      }
      health_->SetServingStatus(info.name(), ready && !draining);
      metrics_->SetModelState(info.name(), info.version(), ready);
      if (ready) {
        if (auto model = repository_->Get(info.name()); model.ok()) {
          metrics_->SetQueueDepth(info.name(),
                                  (*model)->scheduler().queue_depth());
        }
      }
    }
    const bool serving =
        !draining &&
        (required_.empty()
             ? any_ready
             : required_ready == static_cast<int>(required_.size()));
    health_->SetServingStatus("", serving);
    health_->SetServingStatus(kServiceName, serving);
    health_->SetServingStatus(kLivenessService, !draining);
  }

  void StartPeriodic() {
    thread_ = std::thread([this] {
      while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1))) Sync();
    });
  }

  void StopPeriodic() {
    if (!thread_.joinable()) return;
    stop_.Notify();
    thread_.join();
  }

 private:
  const ModelRepository* const repository_;
  const std::vector<std::string> required_;
  grpc::HealthCheckServiceInterface* const health_;
  Metrics* const metrics_;
  absl::Notification stop_;
  std::thread thread_;
};

// Admission flags that cannot work together.
absl::Status CheckAdmission(const ServiceOptions& o) {
  if (o.max_inflight_bytes < 0 || o.analysis_bytes_estimate < 0 ||
      o.min_upload_bytes_per_second < 0 ||
      o.upload_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--max_inflight_bytes, --analysis_bytes_estimate, "
        "--upload_timeout_seconds and --min_upload_bytes_per_second must not "
        "be negative");
  }
  if (o.max_inflight_bytes > 0 &&
      o.max_inflight_bytes < o.max_upload_bytes + o.analysis_bytes_estimate) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_inflight_bytes=", o.max_inflight_bytes,
        " cannot admit even one largest upload: it must be at least "
        "--max_upload_bytes + --analysis_bytes_estimate = ",
        o.max_upload_bytes + o.analysis_bytes_estimate));
  }
  return absl::OkStatus();
}

// The steps of Serve, in the order it takes them. A step that fails returns
// why; Serve logs it (StartupFailed) and exits 1.

int StartupFailed(absl::string_view what, const absl::Status& status) {
  LogLine("error", absl::StrCat("msg=\"", what,
                                "\" error=", LogQuote(status.message())));
  return 1;
}

// SIGTERM/SIGINT are taken by a waiting thread (WaitForShutdownSignal), so
// they are blocked in every thread: call before any thread is started.
sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Serves `metrics` on /metrics; null when --metrics_port is 0.
absl::StatusOr<std::unique_ptr<MetricsHttpServer>> StartMetricsServer(
    const Metrics& metrics) {
  const int port = absl::GetFlag(FLAGS_metrics_port);
  if (port <= 0) return nullptr;
  MetricsHttpOptions http;
  http.host = absl::GetFlag(FLAGS_metrics_host);
  http.port = port;
  http.idle_timeout =
      absl::Seconds(absl::GetFlag(FLAGS_metrics_idle_timeout_seconds));
  ASSIGN_OR_RETURN(std::unique_ptr<MetricsHttpServer> server,
                   MetricsHttpServer::Start(
                       http, [&metrics] { return metrics.RenderText(); }));
  LogLine("info", absl::StrCat("msg=\"serving metrics\" address=", http.host,
                               ":", server->port()));
  return server;
}

// Opens --model_repository and loads its models; every batch is observed in
// `metrics`, every model event logged.
absl::StatusOr<std::unique_ptr<ModelRepository>> OpenRepository(
    Metrics* metrics) {
  RepositoryOptions options;
  options.root = absl::GetFlag(FLAGS_model_repository);
  options.poll_interval =
      absl::Seconds(absl::GetFlag(FLAGS_poll_interval_seconds));
  options.default_intra_op_threads = absl::GetFlag(FLAGS_intra_op_threads);
  options.on_batch = [metrics](const std::string& model,
                               const BatchStats& stats) {
    metrics->ObserveBatch(model, stats.batch_size,
                          absl::ToDoubleSeconds(stats.compute_time));
    if (stats.frontend_time > absl::ZeroDuration()) {
      metrics->ObserveFrontEnd(model,
                               absl::ToDoubleSeconds(stats.frontend_time));
    }
    for (absl::Duration wait : stats.queue_times) {
      metrics->ObserveQueue(model, absl::ToDoubleSeconds(wait));
    }
  };
  options.on_event = LogModelEvent;
  return ModelRepository::Open(options);
}

AnalyzerOptions AnalyzerOptionsFromFlags() {
  AnalyzerOptions options;
  options.decoder.max_input_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  options.decoder.max_duration_seconds =
      absl::GetFlag(FLAGS_max_duration_seconds);
  options.max_in_flight_segments = absl::GetFlag(FLAGS_max_in_flight_segments);
  options.prebuffer_seconds = absl::GetFlag(FLAGS_prebuffer_seconds);
  options.default_models = absl::GetFlag(FLAGS_default_models);
  return options;
}

// Fixes the default set now (unless --default_models did): the models ready
// at start.
void FixDefaultModels(const Analyzer& analyzer) {
  LogLine("info",
          absl::StrCat(
              "msg=\"default models\" models=",
              LogQuote(absl::StrJoin(analyzer.DefaultModels(), ",")), " from=",
              analyzer.options().default_models.empty() ? "ready_at_start"
                                                        : "flag"));
}

// The admission flags, checked against each other (no metrics or
// authenticator yet).
absl::StatusOr<ServiceOptions> ServiceOptionsFromFlags() {
  ServiceOptions options;
  options.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  options.max_deadline =
      absl::Seconds(absl::GetFlag(FLAGS_max_deadline_seconds));
  options.max_inflight_requests = absl::GetFlag(FLAGS_max_inflight_requests);
  options.max_inflight_bytes = absl::GetFlag(FLAGS_max_inflight_bytes);
  options.analysis_bytes_estimate =
      absl::GetFlag(FLAGS_analysis_bytes_estimate);
  options.upload_timeout =
      absl::Seconds(absl::GetFlag(FLAGS_upload_timeout_seconds));
  options.min_upload_bytes_per_second =
      absl::GetFlag(FLAGS_min_upload_bytes_per_second);
  RETURN_IF_ERROR(CheckAdmission(options));
  return options;
}

// The tokens of --auth_token_file; null when the flag is empty (no auth).
absl::StatusOr<std::unique_ptr<TokenAuthenticator>> LoadAuthenticator() {
  const std::string file = absl::GetFlag(FLAGS_auth_token_file);
  if (file.empty()) return nullptr;
  return TokenAuthenticator::FromFile(file);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
CredentialsFromFlags() {
  return MakeServerCredentials({absl::GetFlag(FLAGS_tls_cert),
                                absl::GetFlag(FLAGS_tls_key),
                                absl::GetFlag(FLAGS_tls_client_ca)});
}

// A started gRPC server and what it serves besides the caller's service.
struct GrpcServer {
  // Registered with `server`, so declared first: destroyed after it.
  std::unique_ptr<ReflectionV1Service> reflection_v1;
  std::unique_ptr<grpc::Server> server;  // null when it could not listen
  int port = 0;                          // the bound port; 0 when none
};

// Listens on `address` with `credentials` and serves `service` (which must
// outlive the server), health, reflection (v1alpha and v1) and per-call
// metrics, within the flags' limits on streams, metadata, messages and
// memory.
GrpcServer StartGrpcServer(
    const std::string& address,
    const std::shared_ptr<grpc::ServerCredentials>& credentials,
    AudioTaggerService* service, Metrics* metrics) {
  GrpcServer started;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials, &started.port);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             absl::GetFlag(FLAGS_max_concurrent_streams));
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE,
                             absl::GetFlag(FLAGS_max_metadata_bytes));
  // Compressed requests are refused (UNIMPLEMENTED, before any message is
  // read): a 60 KB gzip message inflates to 60 MB before the handler could
  // charge it to the byte budget (docs/hardening.md).
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_DEFLATE, false);
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, false);
  // gRPC's own buffers (messages still arriving, before a handler can
  // charge them to --max_inflight_bytes); past it gRPC closes connections.
  grpc::ResourceQuota quota("audiotag");
  if (const int64_t bytes = absl::GetFlag(FLAGS_grpc_memory_bytes); bytes > 0) {
    quota.Resize(bytes);
    builder.SetResourceQuota(quota);
  }
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxSendMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.RegisterService(service);
  started.reflection_v1 = std::make_unique<ReflectionV1Service>(
      std::vector<std::string>{kServiceName, "grpc.health.v1.Health",
                               "grpc.reflection.v1alpha.ServerReflection",
                               "grpc.reflection.v1.ServerReflection"});
  builder.RegisterService(started.reflection_v1.get());
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(MakeCallMetricsInterceptorFactory(metrics));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  started.server = builder.BuildAndStart();
  if (started.server == nullptr) started.port = 0;
  return started;
}

// Tells scripts and tests the bound port (--port_file), for --port=0.
void WritePortFile(int port) {
  if (const std::string file = absl::GetFlag(FLAGS_port_file); !file.empty()) {
    std::ofstream(file) << port << "\n";
  }
}

// Blocks until SIGTERM or SIGINT (blocked by BlockShutdownSignals).
void WaitForShutdownSignal(const sigset_t& signals) {
  int signal = 0;
  sigwait(&signals, &signal);
  LogLine("info", absl::StrCat("msg=draining signal=", signal));
}

// Stops accepting calls and reports NOT_SERVING, lets the calls in flight
// finish within --grace_period_seconds, waits for every accepted analysis
// (`pool`), then stops the models' schedulers.
void Drain(grpc::Server& server, AudioTaggerService& service,
           HealthReporter& health, std::unique_ptr<ThreadPool> pool,
           ModelRepository& repository) {
  health.StopPeriodic();
  service.StartDraining();
  health.Sync(/*draining=*/true);
  const absl::Duration grace =
      absl::Seconds(absl::GetFlag(FLAGS_grace_period_seconds));
  server.Shutdown(absl::ToChronoTime(absl::Now() + grace));
  pool.reset();  // every accepted analysis has finished
  repository.Stop();
  LogLine("info", "msg=stopped");
}

int Serve() {
  const sigset_t signals = BlockShutdownSignals();

  Metrics metrics(AUDIOTAG_VERSION);
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> metrics_server =
      StartMetricsServer(metrics);
  if (!metrics_server.ok()) {
    return StartupFailed("cannot serve metrics", metrics_server.status());
  }

  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      OpenRepository(&metrics);
  if (!repository.ok()) {
    return StartupFailed("cannot open model repository", repository.status());
  }
  const Analyzer analyzer(repository->get(), AnalyzerOptionsFromFlags());
  FixDefaultModels(analyzer);
  auto pool =
      std::make_unique<ThreadPool>(absl::GetFlag(FLAGS_analysis_threads));

  absl::StatusOr<ServiceOptions> service_options = ServiceOptionsFromFlags();
  if (!service_options.ok()) {
    return StartupFailed("bad admission flags", service_options.status());
  }
  absl::StatusOr<std::unique_ptr<TokenAuthenticator>> authenticator =
      LoadAuthenticator();
  if (!authenticator.ok()) {
    return StartupFailed("bad --auth_token_file", authenticator.status());
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      CredentialsFromFlags();
  if (!credentials.ok()) {
    return StartupFailed("bad TLS flags", credentials.status());
  }
  service_options->metrics = &metrics;
  service_options->authenticator = authenticator->get();
  AudioTaggerService service(repository->get(), &analyzer, pool.get(),
                             *service_options);

  const std::string address =
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  GrpcServer grpc_server =
      StartGrpcServer(address, *credentials, &service, &metrics);
  if (grpc_server.server == nullptr || grpc_server.port == 0) {
    LogLine("error", absl::StrCat("msg=\"cannot listen\" address=", address));
    return 1;
  }
  HealthReporter health(repository->get(), absl::GetFlag(FLAGS_required_models),
                        grpc_server.server->GetHealthCheckService(), &metrics);
  health.Sync();
  WritePortFile(grpc_server.port);
  LogLine("info",
          absl::StrCat("msg=serving address=", absl::GetFlag(FLAGS_host), ":",
                       grpc_server.port, " model_repository=",
                       absl::GetFlag(FLAGS_model_repository)));
  health.StartPeriodic();

  WaitForShutdownSignal(signals);
  Drain(*grpc_server.server, service, health, std::move(pool), **repository);
  return 0;
}

}  // namespace
}  // namespace audiotag

namespace audiotag {
namespace {

constexpr char kUsage[] =
    "audiotag-server: serves audio tagging, instrument activations and "
    "embeddings of the models in a model repository over gRPC.\n\n"
    "usage: audiotag-server [flags]\n\n"
    "example:\n"
    "  audiotag-server --model_repository=models --port=50051\n\n"
    "`audiotag-server --version` prints the version.\n\nflags:\n";

bool ValidPort(int port) { return port >= 0 && port <= 65535; }

// What can be wrong with the flags before anything is opened.
absl::Status CheckFlags() {
  if (!ValidPort(absl::GetFlag(FLAGS_port))) {
    return absl::InvalidArgumentError("--port must be 0..65535");
  }
  if (!ValidPort(absl::GetFlag(FLAGS_metrics_port))) {
    return absl::InvalidArgumentError("--metrics_port must be 0..65535");
  }
  if (absl::GetFlag(FLAGS_tls_cert).empty() !=
      absl::GetFlag(FLAGS_tls_key).empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (!absl::GetFlag(FLAGS_tls_client_ca).empty() &&
      absl::GetFlag(FLAGS_tls_cert).empty()) {
    return absl::InvalidArgumentError(
        "--tls_client_ca needs --tls_cert and --tls_key (mutual TLS is TLS)");
  }
  if (absl::GetFlag(FLAGS_max_message_bytes) <= 0) {
    return absl::InvalidArgumentError("--max_message_bytes must be positive");
  }
  if (absl::GetFlag(FLAGS_analysis_threads) <= 0) {
    return absl::InvalidArgumentError("--analysis_threads must be positive");
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  ConfigureAbslUsage("audiotag-server");
  const CommandLine line = CheckCommandLine(argc, argv);
  if (line.help) {
    std::cout << kUsage << FlagHelp(ProgramFlagNames());
    return 0;
  }
  if (line.version) {
    std::cout << VersionString("audiotag-server") << "\n";
    return 0;
  }
  absl::Status status = line.status;
  if (status.ok() && !line.positional.empty()) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "takes no positional arguments (got '", line.positional[0], "')"));
  }
  if (status.ok()) {
    absl::ParseCommandLine(argc, argv);
    status = CheckFlags();
  }
  if (!status.ok()) {
    std::cerr << "audiotag-server: " << status.message()
              << "\n(see `audiotag-server --help`)\n";
    return 2;
  }
  if (absl::GetFlag(FLAGS_dry_run)) {
    std::cout << "ok\n";
    return 0;
  }
  return Serve();
}

}  // namespace
}  // namespace audiotag

int main(int argc, char** argv) { return audiotag::Main(argc, argv); }
