#include "server/audiotag_service.h"

#include <grpcpp/alarm.h>

#include <algorithm>
#include <chrono>
#include <memory>
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

void RecordStages(Metrics* metrics, const StageTimes& stages) {
  if (metrics == nullptr) return;
  metrics->ObserveStage("decode", absl::ToDoubleSeconds(stages.decode));
  metrics->ObserveStage("frontend", absl::ToDoubleSeconds(stages.frontend));
  metrics->ObserveStage("queue", absl::ToDoubleSeconds(stages.queue));
  metrics->ObserveStage("forward", absl::ToDoubleSeconds(stages.forward));
  metrics->ObserveStage("aggregate", absl::ToDoubleSeconds(stages.aggregate));
}

// Times the "reply" stage: from Finish with a response to gRPC's OnDone
// (serialised and sent). Started before Finish, stopped in OnDone.
class ReplyClock {
 public:
  void Start(Metrics* metrics) {
    metrics_ = metrics;
    start_ = absl::Now();
  }
  void Stop() {
    if (metrics_ != nullptr) {
      metrics_->ObserveStage("reply",
                             absl::ToDoubleSeconds(absl::Now() - start_));
    }
  }

 private:
  Metrics* metrics_ = nullptr;
  absl::Time start_;
};

}  // namespace

// Owns one Analyze call, and its admission, until gRPC is done with it.
class AudioTaggerService::AnalyzeReactor final
    : public grpc::ServerUnaryReactor {
 public:
  AnalyzeReactor(std::shared_ptr<RequestControl> control,
                 AdmissionControl::Slot slot)
      : control_(std::move(control)), slot_(std::move(slot)) {}
  void OnCancel() override { control_->Cancel(); }
  void OnDone() override {
    reply_clock.Stop();
    delete this;
  }

  ReplyClock reply_clock;

 private:
  const std::shared_ptr<RequestControl> control_;
  AdmissionControl::Slot slot_;
};

// Collects an AnalyzeStream upload, then analyzes it like Analyze. The
// upload is charged to the byte budget chunk by chunk and watched by an
// alarm: a stream that falls behind its upload deadline (see ServiceOptions)
// is finished with DEADLINE_EXCEEDED, which gives back its slot.
//
// Lifetime: deleted by OnDone, or by the last alarm callback when one is
// still pending then. Finish is called exactly once, guarded by `finished_`.
class AudioTaggerService::StreamReactor final
    : public grpc::ServerReadReactor<v1::AnalyzeStreamRequest> {
 public:
  StreamReactor(AudioTaggerService* service,
                grpc::CallbackServerContext* context,
                v1::AnalyzeResponse* response)
      : service_(service),
        context_(context),
        response_(response),
        accepted_(absl::Now()),
        deadline_(service->CallDeadline(*context)) {
    absl::Status admitted = service_->Authorize(*context);
    if (admitted.ok()) {
      absl::StatusOr<AdmissionControl::Slot> slot = service_->Admit(0);
      if (slot.ok()) {
        slot_ = *std::move(slot);
      } else {
        admitted = slot.status();
      }
    }
    absl::Time first_check;
    {
      absl::MutexLock lock(&mu_);
      finished_ = !admitted.ok();
      alarm_pending_ = admitted.ok();
      if (admitted.ok()) first_check = NextCheck();
    }
    if (!admitted.ok()) {
      LogCall("AnalyzeStream", context->peer(), admitted, absl::ZeroDuration());
      Finish(ToGrpcStatus(admitted));
      return;
    }
    // Armed before the first read, so no other callback runs yet.
    ArmAlarm(first_check);
    StartRead(&message_);
  }

  void OnReadDone(bool ok) override {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      if (ok) {
        status = Take();
      } else if (cancelled_) {
        status = absl::CancelledError("the client cancelled the upload");
      } else {
        uploading_ = false;
        status = slot_.Grow(service_->options_.analysis_bytes_estimate);
        if (status.ok()) return StartAnalysisLocked();
      }
      if (!status.ok()) {
        finished_ = true;
        uploading_ = false;
      }
    }
    if (!status.ok()) return Finish(ToGrpcStatus(status));
    StartRead(&message_);
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (control_) control_->Cancel();
  }

  void OnDone() override {
    reply_clock.Stop();
    bool destroy = false;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      slot_.Release();
      std::string().swap(audio_);
      destroy = !alarm_pending_;
    }
    if (destroy) delete this;
  }

  ReplyClock reply_clock;

 private:
  // When the upload, at its current size, runs out of time.
  absl::Time UploadDeadline() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const ServiceOptions& o = service_->options_;
    if (o.upload_timeout <= absl::ZeroDuration()) return deadline_;
    absl::Duration allowed = o.upload_timeout;
    if (o.min_upload_bytes_per_second > 0) {
      allowed += absl::Seconds(static_cast<double>(received_) /
                               o.min_upload_bytes_per_second);
    }
    return std::min(
        {deadline_, accepted_ + allowed, last_message_ + o.upload_timeout});
  }

  // The alarm checks at least once a second, so that a pending alarm keeps
  // the reactor alive at most that long after OnDone.
  absl::Time NextCheck() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::min(UploadDeadline(), absl::Now() + absl::Seconds(1));
  }

  // Only the constructor and the alarm's own callback arm it, never at once.
  void ArmAlarm(absl::Time when) {
    alarm_ = std::make_unique<grpc::Alarm>();
    alarm_->Set(absl::ToChronoTime(when), [this](bool ok) { OnAlarm(ok); });
  }

  void OnAlarm(bool fired) {
    bool destroy = false;
    bool expired = false;
    bool rearm = false;
    absl::Time next;
    {
      absl::MutexLock lock(&mu_);
      alarm_pending_ = false;
      if (done_) {
        destroy = true;
      } else if (fired && uploading_ && !finished_) {
        if (absl::Now() >= UploadDeadline()) {
          expired = true;
          finished_ = true;
          uploading_ = false;
        } else {
          // OnDone now waits for the next callback to delete the reactor.
          alarm_pending_ = rearm = true;
          next = NextCheck();
        }
      }
    }
    if (destroy) {
      delete this;
    } else if (expired) {
      Finish(ToGrpcStatus(UploadExpired()));
    } else if (rearm) {
      ArmAlarm(next);
    }
  }

  absl::Status UploadExpired() const {
    const ServiceOptions& o = service_->options_;
    if (absl::Now() >= deadline_) {
      return absl::DeadlineExceededError(
          "the call's deadline passed before the upload ended");
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "AnalyzeStream upload too slow: it must send a message at least "
        "every ",
        absl::FormatDuration(o.upload_timeout), " and end within ",
        absl::FormatDuration(o.upload_timeout), " plus 1 s per ",
        o.min_upload_bytes_per_second,
        " bytes received (--upload_timeout_seconds, "
        "--min_upload_bytes_per_second)"));
  }

  absl::Status Take() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_message_ = absl::Now();
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
    if (absl::Status s = slot_.Grow(static_cast<int64_t>(chunk.size()));
        !s.ok()) {
      return s;
    }
    audio_.append(chunk);
    received_ = size;
    return absl::OkStatus();
  }

  void StartAnalysisLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (service_->options_.metrics != nullptr) {
      service_->options_.metrics->ObserveStage(
          "upload", absl::ToDoubleSeconds(absl::Now() - accepted_));
    }
    control_ = service_->MakeControl(deadline_, options_);
    if (cancelled_) control_->Cancel();
    service_->RunAnalysis(this, "AnalyzeStream", audio_, options_,
                          RequestId(*context_, options_, control_->id()),
                          control_, response_);
  }

  AudioTaggerService* const service_;
  grpc::CallbackServerContext* const context_;
  v1::AnalyzeResponse* const response_;
  const absl::Time accepted_;
  const absl::Time deadline_;  // of the whole call
  std::unique_ptr<grpc::Alarm> alarm_;
  absl::Mutex mu_;
  v1::AnalyzeStreamRequest message_;
  v1::AnalyzeOptions options_;
  bool has_options_ = false;
  std::string audio_;
  AdmissionControl::Slot slot_ ABSL_GUARDED_BY(mu_);
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_message_ ABSL_GUARDED_BY(mu_) = accepted_;
  bool uploading_ ABSL_GUARDED_BY(mu_) = true;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool alarm_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<RequestControl> control_ ABSL_GUARDED_BY(mu_);
};

AudioTaggerService::AudioTaggerService(const ModelRepository* repository,
                                       const Analyzer* analyzer,
                                       ThreadPool* pool, ServiceOptions options)
    : repository_(repository),
      analyzer_(analyzer),
      pool_(pool),
      options_(std::move(options)),
      admission_(options_.max_inflight_requests, options_.max_inflight_bytes) {}

absl::Status AudioTaggerService::Authorize(
    const grpc::CallbackServerContext& context) const {
  if (options_.authenticator == nullptr) return absl::OkStatus();
  return options_.authenticator->Check(context);
}

absl::StatusOr<AdmissionControl::Slot> AudioTaggerService::Admit(
    int64_t bytes) {
  if (draining_.load()) {
    return absl::UnavailableError(
        "server is shutting down; retry on another replica");
  }
  return admission_.Acquire(bytes);
}

absl::Time AudioTaggerService::CallDeadline(
    const grpc::CallbackServerContext& context) const {
  absl::Time deadline = DeadlineOf(&context);
  if (options_.max_deadline > absl::ZeroDuration()) {
    deadline = std::min(deadline, absl::Now() + options_.max_deadline);
  }
  return deadline;
}

std::shared_ptr<RequestControl> AudioTaggerService::MakeControl(
    absl::Time deadline, const v1::AnalyzeOptions& options) {
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
    RequestLog log(options_.metrics, repository_, control->id(), method,
                   request_id, options, audio.size());
    StageTimes stages;
    absl::StatusOr<v1::AnalyzeResponse> result =
        analyzer_->Analyze(audio, options, control, &stages);
    log.Finish(result);
    if (result.ok()) {
      RecordStages(options_.metrics, stages);
      *response = *std::move(result);
      response->set_request_id(request_id);
      reactor->reply_clock.Start(options_.metrics);
    }
    reactor->Finish(ToGrpcStatus(result.status()));
  });
}

grpc::ServerUnaryReactor* AudioTaggerService::Analyze(
    grpc::CallbackServerContext* context, const v1::AnalyzeRequest* request,
    v1::AnalyzeResponse* response) {
  const absl::Time deadline = CallDeadline(*context);
  const int64_t size = static_cast<int64_t>(request->audio().size());
  absl::StatusOr<AdmissionControl::Slot> slot = absl::UnknownError("");
  if (absl::Status s = Authorize(*context); !s.ok()) {
    slot = s;
  } else if (size > options_.max_upload_bytes) {
    slot = UploadTooLarge(size, options_.max_upload_bytes);
  } else {
    slot = Admit(size + options_.analysis_bytes_estimate);
  }
  if (!slot.ok()) {
    LogCall("Analyze", context->peer(), slot.status(), absl::ZeroDuration());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(ToGrpcStatus(slot.status()));
    return reactor;
  }
  std::shared_ptr<RequestControl> control =
      MakeControl(deadline, request->options());
  auto* reactor = new AnalyzeReactor(control, *std::move(slot));
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
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status s = Authorize(*context); !s.ok()) {
    LogCall("ListModels", context->peer(), s, absl::Now() - start);
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  for (v1::ModelInfo& info : repository_->List()) {
    *response->add_models() = std::move(info);
  }
  LogCall("ListModels", context->peer(), absl::OkStatus(), absl::Now() - start);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* AudioTaggerService::GetModel(
    grpc::CallbackServerContext* context, const v1::GetModelRequest* request,
    v1::ModelInfo* response) {
  const absl::Time start = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status s = Authorize(*context); !s.ok()) {
    LogCall("GetModel", context->peer(), s, absl::Now() - start);
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  absl::StatusOr<v1::ModelInfo> info = repository_->Describe(request->name());
  if (info.ok()) *response = *std::move(info);
  LogCall("GetModel", context->peer(), info.status(), absl::Now() - start);
  reactor->Finish(ToGrpcStatus(info.status()));
  return reactor;
}

}  // namespace audiotag
