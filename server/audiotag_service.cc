#include "server/audiotag_service.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/request_log.h"
#include "server/status_util.h"

namespace audiotag {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  // gRPC reports "no deadline" as a time far in the future.
  if (deadline >
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365))
    return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

absl::Status UploadTooLarge(int64_t size, int64_t limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("upload of ", size, " bytes exceeds the server's limit of ",
                   limit, " bytes (--max_upload_bytes)"));
}

}  // namespace

// Owns one Analyze call until gRPC is done with it.
class AudioTaggerService::AnalyzeReactor final
    : public grpc::ServerUnaryReactor {
 public:
  explicit AnalyzeReactor(std::shared_ptr<RequestControl> control)
      : control_(std::move(control)) {}
  void OnCancel() override { control_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  const std::shared_ptr<RequestControl> control_;
};

// Collects an AnalyzeStream upload, then analyzes it like Analyze.
class AudioTaggerService::StreamReactor final
    : public grpc::ServerReadReactor<v1::AnalyzeStreamRequest> {
 public:
  StreamReactor(AudioTaggerService* service,
                grpc::CallbackServerContext* context,
                v1::AnalyzeResponse* response)
      : service_(service), context_(context), response_(response) {
    if (service_->draining_.load()) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "server is shutting down; retry on another replica"));
      return;
    }
    StartRead(&message_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return StartAnalysis();
    if (absl::Status s = Take(); !s.ok()) return Finish(ToGrpcStatus(s));
    StartRead(&message_);
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (control_) control_->Cancel();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Take() {
    if (message_.has_options()) {
      if (has_options_ || !audio_.empty()) {
        return absl::InvalidArgumentError(
            "AnalyzeStream: options must come once, in the first message");
      }
      has_options_ = true;
      options_ = message_.options();
      return absl::OkStatus();
    }
    const std::string& chunk = message_.audio_chunk();
    const int64_t size = static_cast<int64_t>(audio_.size() + chunk.size());
    if (size > service_->options_.max_upload_bytes) {
      return UploadTooLarge(size, service_->options_.max_upload_bytes);
    }
    audio_.append(chunk);
    return absl::OkStatus();
  }

  void StartAnalysis() {
    std::shared_ptr<RequestControl> control =
        service_->MakeControl(context_, options_);
    {
      absl::MutexLock lock(&mu_);
      control_ = control;
      if (cancelled_) control_->Cancel();
    }
    service_->pool_->Schedule([this, control] {
      RequestLog log(control->id(), "AnalyzeStream", options_, audio_.size());
      absl::StatusOr<v1::AnalyzeResponse> result =
          service_->analyzer_->Analyze(audio_, options_, control);
      log.Finish(result);
      if (result.ok()) *response_ = *std::move(result);
      Finish(ToGrpcStatus(result.status()));
    });
  }

  AudioTaggerService* const service_;
  grpc::CallbackServerContext* const context_;
  v1::AnalyzeResponse* const response_;
  v1::AnalyzeStreamRequest message_;
  v1::AnalyzeOptions options_;
  bool has_options_ = false;
  std::string audio_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<RequestControl> control_ ABSL_GUARDED_BY(mu_);
};

AudioTaggerService::AudioTaggerService(const ModelRepository* repository,
                                       const Analyzer* analyzer,
                                       ThreadPool* pool, ServiceOptions options)
    : repository_(repository),
      analyzer_(analyzer),
      pool_(pool),
      options_(std::move(options)) {}

std::shared_ptr<RequestControl> AudioTaggerService::MakeControl(
    grpc::CallbackServerContext* context, const v1::AnalyzeOptions& options) {
  absl::Time deadline = DeadlineOf(context);
  if (options_.max_deadline > absl::ZeroDuration()) {
    deadline = std::min(deadline, absl::Now() + options_.max_deadline);
  }
  const Priority priority = options.priority() == v1::PRIORITY_BULK
                                ? Priority::kBulk
                                : Priority::kInteractive;
  return std::make_shared<RequestControl>(next_request_id_.fetch_add(1),
                                          priority, deadline);
}

grpc::ServerUnaryReactor* AudioTaggerService::Analyze(
    grpc::CallbackServerContext* context, const v1::AnalyzeRequest* request,
    v1::AnalyzeResponse* response) {
  std::shared_ptr<RequestControl> control =
      MakeControl(context, request->options());
  auto* reactor = new AnalyzeReactor(control);
  if (draining_.load()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE,
                     "server is shutting down; retry on another replica"));
    return reactor;
  }
  const int64_t size = static_cast<int64_t>(request->audio().size());
  if (size > options_.max_upload_bytes) {
    reactor->Finish(
        ToGrpcStatus(UploadTooLarge(size, options_.max_upload_bytes)));
    return reactor;
  }
  pool_->Schedule([this, reactor, request, response, control] {
    RequestLog log(control->id(), "Analyze", request->options(),
                   request->audio().size());
    absl::StatusOr<v1::AnalyzeResponse> result =
        analyzer_->Analyze(request->audio(), request->options(), control);
    log.Finish(result);
    if (result.ok()) *response = *std::move(result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

grpc::ServerReadReactor<v1::AnalyzeStreamRequest>*
AudioTaggerService::AnalyzeStream(grpc::CallbackServerContext* context,
                                  v1::AnalyzeResponse* response) {
  return new StreamReactor(this, context, response);
}

grpc::ServerUnaryReactor* AudioTaggerService::ListModels(
    grpc::CallbackServerContext* context, const v1::ListModelsRequest* request,
    v1::ListModelsResponse* response) {
  for (v1::ModelInfo& info : repository_->List()) {
    *response->add_models() = std::move(info);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AudioTaggerService::GetModel(
    grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  absl::StatusOr<v1::ModelInfo> info = repository_->Describe(request->name());
  if (info.ok()) *response = *std::move(info);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(info.status()));
  return reactor;
}

}  // namespace audiotag
