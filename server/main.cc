// audiotag-server: serves the models of a model repository over gRPC.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/audiotag_service.h"
#include "server/request_log.h"
#include "src/analysis/analyzer.h"
#include "src/common/thread_pool.h"
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
ABSL_FLAG(int, max_in_flight_segments, 256,
          "Most segments of one request queued per model at a time.");
ABSL_FLAG(double, poll_interval_seconds, 0,
          "How often to rescan the model repository; 0 disables.");
ABSL_FLAG(int, intra_op_threads, 0,
          "LibTorch intra-op threads (0: LibTorch's default).");
ABSL_FLAG(double, grace_period_seconds, 30,
          "On SIGTERM, how long in-flight calls may take to finish.");
ABSL_FLAG(double, max_deadline_seconds, 0,
          "Ceiling on every call's deadline; 0 means none.");

namespace audiotag {
namespace {

constexpr char kServiceName[] = "audiotag.v1.AudioTagger";

// Reflects each model's state in grpc.health.v1: "" and the service name are
// SERVING while any model is ready, each model name while that model is.
void SyncHealth(const ModelRepository& repository,
                grpc::HealthCheckServiceInterface* health, bool draining) {
  bool any_ready = false;
  for (const v1::ModelInfo& info : repository.List()) {
    const bool ready = !draining && info.state() == v1::READY;
    any_ready |= ready;
    health->SetServingStatus(info.name(), ready);
  }
  health->SetServingStatus("", any_ready);
  health->SetServingStatus(kServiceName, any_ready);
}

int Serve() {
  // SIGTERM/SIGINT are taken by a waiting thread, so block them in every
  // thread before any is started.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  RepositoryOptions repo_options;
  repo_options.root = absl::GetFlag(FLAGS_model_repository);
  repo_options.poll_interval =
      absl::Seconds(absl::GetFlag(FLAGS_poll_interval_seconds));
  repo_options.default_intra_op_threads = absl::GetFlag(FLAGS_intra_op_threads);
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Open(repo_options);
  if (!repository.ok()) {
    LogLine("error",
            absl::StrCat("msg=\"cannot open model repository\" error=\"",
                         repository.status().message(), "\""));
    return 1;
  }
  for (const v1::ModelInfo& info : (*repository)->List()) {
    LogLine(info.state() == v1::READY ? "info" : "warn",
            absl::StrCat(
                "msg=model name=", info.name(), " version=", info.version(),
                " state=", v1::ModelState_Name(info.state()),
                info.state_reason().empty()
                    ? ""
                    : absl::StrCat(" reason=\"", info.state_reason(), "\"")));
  }

  AnalyzerOptions analyzer_options;
  analyzer_options.decoder.max_input_bytes =
      absl::GetFlag(FLAGS_max_upload_bytes);
  analyzer_options.decoder.max_duration_seconds =
      absl::GetFlag(FLAGS_max_duration_seconds);
  analyzer_options.max_in_flight_segments =
      absl::GetFlag(FLAGS_max_in_flight_segments);
  Analyzer analyzer(repository->get(), analyzer_options);
  auto pool =
      std::make_unique<ThreadPool>(absl::GetFlag(FLAGS_analysis_threads));

  ServiceOptions service_options;
  service_options.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  service_options.max_deadline =
      absl::Seconds(absl::GetFlag(FLAGS_max_deadline_seconds));
  AudioTaggerService service(repository->get(), &analyzer, pool.get(),
                             service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address =
      absl::StrCat(absl::GetFlag(FLAGS_host), ":", absl::GetFlag(FLAGS_port));
  int bound_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxSendMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    LogLine("error", absl::StrCat("msg=\"cannot listen\" address=", address));
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  SyncHealth(**repository, health, /*draining=*/false);
  if (const std::string file = absl::GetFlag(FLAGS_port_file); !file.empty()) {
    std::ofstream(file) << bound_port << "\n";
  }
  LogLine("info",
          absl::StrCat("msg=serving address=", absl::GetFlag(FLAGS_host), ":",
                       bound_port, " model_repository=", repo_options.root));

  absl::Notification stopping;
  std::thread health_sync([&] {
    while (!stopping.WaitForNotificationWithTimeout(absl::Seconds(1))) {
      SyncHealth(**repository, health, /*draining=*/false);
    }
  });

  int signal = 0;
  sigwait(&signals, &signal);
  LogLine("info", absl::StrCat("msg=draining signal=", signal));
  stopping.Notify();
  health_sync.join();
  service.StartDraining();
  SyncHealth(**repository, health, /*draining=*/true);
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

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves audio tagging, instrument activations and embeddings over gRPC.\n"
      "  audiotag-server --model_repository=models --port=50051");
  absl::ParseCommandLine(argc, argv);
  return audiotag::Serve();
}
