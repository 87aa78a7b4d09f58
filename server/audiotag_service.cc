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
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

absl::Status UploadTooLarge(int64_t size, int64_t limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("upload of ", size, " bytes exceeds the server's limit of ",
                   limit, " bytes (--max_upload_bytes)"));
}

// The request's id: the client's own, else the x-request-id metadata, else
// one made from the server's counter.
std::string RequestId(const grpc::CallbackServerContext& context,
                      const v1::AnalyzeOptions& options, uint64_t id) {
  if (!options.request_id().empty()) return options.request_id();
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("x-request-id"); it != metadata.end()) {
    return std::string(it->second.data(), it->second.size());
  }
  return absl::StrCat("at-", id);
}

}  // namespace

// Owns one Analyze call until gRPC is done with it.
class AudioTaggerService::AnalyzeReactor final
    : public grpc::ServerUnaryReactor {
 public:
  explicit AnalyzeReactor(std::shared_ptr<RequestControl> control)
      : control_(std::move(control)) {}
  void OnCancel() override {
    if (control_) control_->Cancel();
  }
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
    if (absl::Status s = service_->Admit(*context, /*analysis=*/true);
        !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    admitted_ = true;
    StartRead(&message_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return StartAnalysis();
    if (absl::Status s = Take(); !s.ok()) {
      service_->Release();
      admitted_ = false;
      return Finish(ToGrpcStatus(s));
    }
    StartRead(&message_);
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (control_) control_->Cancel();
  }

  void OnDone() override {
    // A client that went away mid-upload never reached StartAnalysis.
    if (admitted_ && !analysis_started_) service_->Release();
    delete this;
  }

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
    analysis_started_ = true;
    service_->RunAnalysis(this, "AnalyzeStream", audio_, options_,
                          RequestId(*context_, options_, control->id()),
                          control, response_);
  }

  AudioTaggerService* const service_;
  grpc::CallbackServerContext* const context_;
  v1::AnalyzeResponse* const response_;
  v1::AnalyzeStreamRequest message_;
  v1::AnalyzeOptions options_;
  bool has_options_ = false;
  bool admitted_ = false;
  bool analysis_started_ = false;
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

absl::Status AudioTaggerService::Admit(
    const grpc::CallbackServerContext& context, bool analysis) {
  if (options_.authenticator != nullptr) {
    if (absl::Status s = options_.authenticator->Check(context); !s.ok()) {
      return s;
    }
  }
  if (!analysis) return absl::OkStatus();
  if (draining_.load()) {
    return absl::UnavailableError(
        "server is shutting down; retry on another replica");
  }
  const int inflight = inflight_.fetch_add(1) + 1;
  if (options_.max_inflight_requests > 0 &&
      inflight > options_.max_inflight_requests) {
    inflight_.fetch_sub(1);
    return absl::ResourceExhaustedError(absl::StrCat(
        "server is at its limit of ", options_.max_inflight_requests,
        " concurrent analyses (--max_inflight_requests); retry later"));
  }
  return absl::OkStatus();
}

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

template <typename Reactor>
void AudioTaggerService::RunAnalysis(Reactor* reactor, absl::string_view method,
                                     const std::string& audio,
                                     const v1::AnalyzeOptions& options,
                                     std::string request_id,
                                     std::shared_ptr<RequestControl> control,
                                     v1::AnalyzeResponse* response) {
  pool_->Schedule([this, reactor, method, &audio, &options,
                   request_id = std::move(request_id), control, response] {
    RequestLog log(options_.metrics, control->id(), method, request_id, options,
                   audio.size());
    absl::StatusOr<v1::AnalyzeResponse> result =
        analyzer_->Analyze(audio, options, control);
    log.Finish(result);
    if (result.ok()) {
      *response = *std::move(result);
      response->set_request_id(request_id);
    }
    Release();
    reactor->Finish(ToGrpcStatus(result.status()));
  });
}

grpc::ServerUnaryReactor* AudioTaggerService::Analyze(
    grpc::CallbackServerContext* context, const v1::AnalyzeRequest* request,
    v1::AnalyzeResponse* response) {
  if (absl::Status s = Admit(*context, /*analysis=*/true); !s.ok()) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  std::shared_ptr<RequestControl> control =
      MakeControl(context, request->options());
  auto* reactor = new AnalyzeReactor(control);
  const int64_t size = static_cast<int64_t>(request->audio().size());
  if (size > options_.max_upload_bytes) {
    Release();
    reactor->Finish(
        ToGrpcStatus(UploadTooLarge(size, options_.max_upload_bytes)));
    return reactor;
  }
  RunAnalysis(reactor, "Analyze", request->audio(), request->options(),
              RequestId(*context, request->options(), control->id()), control,
              response);
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
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status s = Admit(*context, /*analysis=*/false); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  for (v1::ModelInfo& info : repository_->List()) {
    *response->add_models() = std::move(info);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AudioTaggerService::GetModel(
    grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status s = Admit(*context, /*analysis=*/false); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  absl::StatusOr<v1::ModelInfo> info = repository_->Describe(request->name());
  if (info.ok()) *response = *std::move(info);
  reactor->Finish(ToGrpcStatus(info.status()));
  return reactor;
}

}  // namespace audiotag
