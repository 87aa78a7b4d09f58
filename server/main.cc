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

// Reflects each model's state in grpc.health.v1 and the metrics: each model
// name is SERVING while that model is ready; "" and the service name while
// every required model is ready (or, with none required, any model).
void SyncHealth(const ModelRepository& repository,
                const std::vector<std::string>& required,
                grpc::HealthCheckServiceInterface* health, Metrics* metrics,
                bool draining) {
  bool any_ready = false;
  int required_ready = 0;
  for (const v1::ModelInfo& info : repository.List()) {
    const bool ready = info.state() == v1::READY;
    any_ready |= ready;
    if (ready && absl::c_linear_search(required, info.name())) {
      ++required_ready;
    }
    health->SetServingStatus(info.name(), ready && !draining);
    metrics->SetModelState(info.name(), info.version(), ready);
    if (ready) {
      if (auto model = repository.Get(info.name()); model.ok()) {
        metrics->SetQueueDepth(info.name(),
                               (*model)->scheduler().queue_depth());
      }
    }
  }
  const bool serving =
      !draining &&
      (required.empty() ? any_ready
                        : required_ready == static_cast<int>(required.size()));
  health->SetServingStatus("", serving);
  health->SetServingStatus(kServiceName, serving);
  health->SetServingStatus(kLivenessService, !draining);
}

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

int Serve() {
  // SIGTERM/SIGINT are taken by a waiting thread, so block them in every
  // thread before any is started.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Metrics metrics(AUDIOTAG_VERSION);
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (const int port = absl::GetFlag(FLAGS_metrics_port); port > 0) {
    MetricsHttpOptions http;
    http.host = absl::GetFlag(FLAGS_metrics_host);
    http.port = port;
    http.idle_timeout =
        absl::Seconds(absl::GetFlag(FLAGS_metrics_idle_timeout_seconds));
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(http,
                                 [&metrics] { return metrics.RenderText(); });
    if (!started.ok()) {
      LogLine("error", absl::StrCat("msg=\"cannot serve metrics\" error=",
                                    LogQuote(started.status().message())));
      return 1;
    }
    metrics_server = *std::move(started);
    LogLine("info", absl::StrCat("msg=\"serving metrics\" address=", http.host,
                                 ":", metrics_server->port()));
  }
  RepositoryOptions repo_options;
  repo_options.root = absl::GetFlag(FLAGS_model_repository);
  repo_options.poll_interval =
      absl::Seconds(absl::GetFlag(FLAGS_poll_interval_seconds));
  repo_options.default_intra_op_threads = absl::GetFlag(FLAGS_intra_op_threads);
  repo_options.on_batch = [&metrics](const std::string& model,
                                     const BatchStats& stats) {
    metrics.ObserveBatch(model, stats.batch_size,
                         absl::ToDoubleSeconds(stats.compute_time));
    if (stats.frontend_time > absl::ZeroDuration()) {
      metrics.ObserveFrontEnd(model,
                              absl::ToDoubleSeconds(stats.frontend_time));
    }
    for (absl::Duration wait : stats.queue_times) {
      metrics.ObserveQueue(model, absl::ToDoubleSeconds(wait));
    }
  };
  repo_options.on_event = LogModelEvent;
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Open(repo_options);
  if (!repository.ok()) {
    LogLine("error", absl::StrCat("msg=\"cannot open model repository\" error=",
                                  LogQuote(repository.status().message())));
    return 1;
  }

  AnalyzerOptions analyzer_options;
  analyzer_options.decoder.max_input_bytes =
      absl::GetFlag(FLAGS_max_upload_bytes);
  analyzer_options.decoder.max_duration_seconds =
      absl::GetFlag(FLAGS_max_duration_seconds);
  analyzer_options.max_in_flight_segments =
      absl::GetFlag(FLAGS_max_in_flight_segments);
  analyzer_options.prebuffer_seconds = absl::GetFlag(FLAGS_prebuffer_seconds);
  analyzer_options.default_models = absl::GetFlag(FLAGS_default_models);
  Analyzer analyzer(repository->get(), analyzer_options);
  // Fix the default set now (unless the flag did): the models ready at start.
  LogLine(
      "info",
      absl::StrCat(
          "msg=\"default models\" models=",
          LogQuote(absl::StrJoin(analyzer.DefaultModels(), ",")), " from=",
          analyzer_options.default_models.empty() ? "ready_at_start" : "flag"));
  auto pool =
      std::make_unique<ThreadPool>(absl::GetFlag(FLAGS_analysis_threads));

  ServiceOptions service_options;
  service_options.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  service_options.max_deadline =
      absl::Seconds(absl::GetFlag(FLAGS_max_deadline_seconds));
  service_options.max_inflight_requests =
      absl::GetFlag(FLAGS_max_inflight_requests);
  service_options.max_inflight_bytes = absl::GetFlag(FLAGS_max_inflight_bytes);
  service_options.analysis_bytes_estimate =
      absl::GetFlag(FLAGS_analysis_bytes_estimate);
  service_options.upload_timeout =
      absl::Seconds(absl::GetFlag(FLAGS_upload_timeout_seconds));
  service_options.min_upload_bytes_per_second =
      absl::GetFlag(FLAGS_min_upload_bytes_per_second);
  if (absl::Status s = CheckAdmission(service_options); !s.ok()) {
    LogLine("error", absl::StrCat("msg=\"bad admission flags\" error=",
                                  LogQuote(s.message())));
    return 1;
  }
  service_options.metrics = &metrics;
  std::unique_ptr<TokenAuthenticator> authenticator;
  if (const std::string file = absl::GetFlag(FLAGS_auth_token_file);
      !file.empty()) {
    absl::StatusOr<std::unique_ptr<TokenAuthenticator>> auth =
        TokenAuthenticator::FromFile(file);
    if (!auth.ok()) {
      LogLine("error", absl::StrCat("msg=\"bad --auth_token_file\" error=",
                                    LogQuote(auth.status().message())));
      return 1;
    }
    authenticator = *std::move(auth);
    service_options.authenticator = authenticator.get();
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials({absl::GetFlag(FLAGS_tls_cert),
                             absl::GetFlag(FLAGS_tls_key),
                             absl::GetFlag(FLAGS_tls_client_ca)});
  if (!credentials.ok()) {
    LogLine("error", absl::StrCat("msg=\"bad TLS flags\" error=",
                                  LogQuote(credentials.status().message())));
    return 1;
  }
  AudioTaggerService service(repository->get(), &analyzer, pool.get(),
                             service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address =
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  int bound_port = 0;
  builder.AddListeningPort(address, *credentials, &bound_port);
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
  builder.RegisterService(&service);
  ReflectionV1Service reflection_v1({kServiceName, "grpc.health.v1.Health",
                                     "grpc.reflection.v1alpha.ServerReflection",
                                     "grpc.reflection.v1.ServerReflection"});
  builder.RegisterService(&reflection_v1);
  {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(MakeCallMetricsInterceptorFactory(&metrics));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    LogLine("error", absl::StrCat("msg=\"cannot listen\" address=", address));
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  const std::vector<std::string> required =
      absl::GetFlag(FLAGS_required_models);
  SyncHealth(**repository, required, health, &metrics, /*draining=*/false);
  if (const std::string file = absl::GetFlag(FLAGS_port_file); !file.empty()) {
    std::ofstream(file) << bound_port << "\n";
  }
  LogLine("info",
          absl::StrCat("msg=serving address=", absl::GetFlag(FLAGS_host), ":",
                       bound_port, " model_repository=", repo_options.root));

  absl::Notification stopping;
  std::thread health_sync([&] {
    while (!stopping.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      SyncHealth(**repository, required, health, &metrics,
                 /*draining=*/false);
    }
  });

  int signal = 0;
  sigwait(&signals, &signal);
  LogLine("info", absl::StrCat("msg=draining signal=", signal));
  stopping.Notify();
  health_sync.join();
  service.StartDraining();
  SyncHealth(**repository, required, health, &metrics, /*draining=*/true);
  const absl::Duration grace =
      absl::Seconds(absl::GetFlag(FLAGS_grace_period_seconds));
  server->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  pool.reset();  // every accepted analysis has finished
  (*repository)->Stop();
  LogLine("info", "msg=stopped");
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
