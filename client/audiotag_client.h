#ifndef AUDIOTAG_CLIENT_AUDIOTAG_CLIENT_H_
#define AUDIOTAG_CLIENT_AUDIOTAG_CLIENT_H_

// A thin synchronous client for audiotag.v1.AudioTagger, shared by the CLI's
// commands. Files larger than one message go through AnalyzeStream.
//
// Thread-safety: thread-safe (gRPC stubs are).

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "client/connection.h"
#include "grpc_health/v1/health.grpc.pb.h"

namespace audiotag {

struct ClientOptions {
  // "host:port", or any gRPC target ("dns:///svc:50051").
  std::string server = "127.0.0.1:50051";
  // Uploads larger than this use AnalyzeStream (in chunks no larger than
  // this either). Default 4 MiB, gRPC's default message limit, so it works
  // against any server configuration.
  int64_t max_message_bytes = int64_t{4} << 20;
  // Size of each AnalyzeStream chunk, at most max_message_bytes less a
  // little framing. Default 1 MiB.
  int64_t chunk_bytes = int64_t{1} << 20;
  // gRPC load-balancing policy of the channel, e.g. "round_robin" to spread
  // calls over every address a "dns:///" target resolves to. Default empty:
  // gRPC's default (pick_first).
  std::string load_balancing_policy;
  // Per-call deadline; zero means none.
  absl::Duration timeout = absl::ZeroDuration();
  // Transport security and bearer token. Default plaintext, no token.
  Connection connection;
};

class AudioTagClient {
 public:
  explicit AudioTagClient(ClientOptions options);

  // gRPC errors come back as absl::Status with the same code and message.
  absl::StatusOr<v1::AnalyzeResponse> Analyze(
      const std::string& audio, const v1::AnalyzeOptions& options) const;
  absl::StatusOr<v1::ListModelsResponse> ListModels() const;
  absl::StatusOr<v1::ModelInfo> GetModel(const std::string& name) const;
  // grpc.health.v1 Check of `service` ("" is the whole server).
  absl::StatusOr<grpc::health::v1::HealthCheckResponse::ServingStatus> Health(
      const std::string& service) const;

 private:
  absl::StatusOr<v1::AnalyzeResponse> AnalyzeStream(
      const std::string& audio, const v1::AnalyzeOptions& options) const;
  void Prepare(grpc::ClientContext* context) const;

  const ClientOptions options_;
  std::unique_ptr<v1::AudioTagger::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// Reads a whole file; NOT_FOUND / INVALID_ARGUMENT with the path.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_AUDIOTAG_CLIENT_H_
