#include "client/audiotag_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace audiotag {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

// gRPC's "Received/Sent message larger than max" says nothing of the fix.
absl::Status ExplainMessageLimit(absl::Status status) {
  if (status.code() != absl::StatusCode::kResourceExhausted ||
      !absl::StrContains(status.message(), "larger than max")) {
    return status;
  }
  return absl::Status(
      status.code(),
      absl::StrCat(status.message(),
                   " (the request or its reply exceeds the server's gRPC "
                   "message limit, audiotag-server --max_message_bytes: lower "
                   "the client's --max_message_bytes so that files this size "
                   "are sent with AnalyzeStream, raise the server's limit, "
                   "or leave out segment_embeddings, the largest part of a "
                   "reply)"));
}

}  // namespace

AudioTagClient::AudioTagClient(ClientOptions options)
    : options_(std::move(options)) {
  grpc::ChannelArguments args;
  // The reply (embeddings per segment of a long file) can be large.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  if (!options_.load_balancing_policy.empty()) {
    args.SetLoadBalancingPolicyName(options_.load_balancing_policy);
  }
  std::shared_ptr<grpc::Channel> channel =
      options_.connection.NewChannel(options_.server, args);
  stub_ = v1::AudioTagger::NewStub(channel);
  health_ = grpc::health::v1::Health::NewStub(channel);
}

void AudioTagClient::Prepare(grpc::ClientContext* context) const {
  if (options_.timeout > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  }
  options_.connection.Authorize(context);
}

absl::StatusOr<v1::AnalyzeResponse> AudioTagClient::Analyze(
    const std::string& audio, const v1::AnalyzeOptions& options) const {
  if (static_cast<int64_t>(audio.size()) > options_.max_message_bytes) {
    return AnalyzeStream(audio, options);
  }
  v1::AnalyzeRequest request;
  request.set_audio(audio);
  *request.mutable_options() = options;
  v1::AnalyzeResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  if (absl::Status s = FromGrpc(stub_->Analyze(&context, request, &response));
      !s.ok()) {
    return ExplainMessageLimit(s);
  }
  return response;
}

absl::StatusOr<v1::AnalyzeResponse> AudioTagClient::AnalyzeStream(
    const std::string& audio, const v1::AnalyzeOptions& options) const {
  v1::AnalyzeResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  std::unique_ptr<grpc::ClientWriter<v1::AnalyzeStreamRequest>> writer =
      stub_->AnalyzeStream(&context, &response);
  v1::AnalyzeStreamRequest message;
  *message.mutable_options() = options;
  bool ok = writer->Write(message);
  // Each chunk message stays within max_message_bytes too (a few bytes go
  // to the message's framing).
  const size_t chunk = static_cast<size_t>(std::max<int64_t>(
      1024, std::min(options_.chunk_bytes, options_.max_message_bytes - 64)));
  for (size_t at = 0; ok && at < audio.size(); at += chunk) {
    message.set_audio_chunk(audio.substr(at, chunk));
    ok = writer->Write(message);
  }
  writer->WritesDone();
  if (absl::Status s = FromGrpc(writer->Finish()); !s.ok()) {
    return ExplainMessageLimit(s);
  }
  return response;
}

absl::StatusOr<v1::ListModelsResponse> AudioTagClient::ListModels() const {
  v1::ListModelsResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  if (absl::Status s = FromGrpc(
          stub_->ListModels(&context, v1::ListModelsRequest(), &response));
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<v1::ModelInfo> AudioTagClient::GetModel(
    const std::string& name) const {
  v1::GetModelRequest request;
  request.set_name(name);
  v1::ModelInfo response;
  grpc::ClientContext context;
  Prepare(&context);
  if (absl::Status s = FromGrpc(stub_->GetModel(&context, request, &response));
      !s.ok()) {
    return s;
  }
  return response;
}

absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus>
AudioTagClient::Health(const std::string& service) const {
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  Prepare(&context);
  if (absl::Status s = FromGrpc(health_->Check(&context, request, &response));
      !s.ok()) {
    return s;
  }
  return response.status();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(
        "cannot open '", path, "': ", std::generic_category().message(errno)));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad())
    return absl::InvalidArgumentError(absl::StrCat("cannot read '", path, "'"));
  return std::move(out).str();
}

}  // namespace audiotag
