#ifndef AUDIOTAG_SERVER_AUDIOTAG_SERVICE_H_
#define AUDIOTAG_SERVER_AUDIOTAG_SERVICE_H_

// The gRPC front door: the audiotag.v1.AudioTagger service on gRPC's callback
// API. Handlers validate the call, hand the analysis to a worker pool (gRPC's
// threads never block) and finish the reactor when the engine answers. Client
// cancellation and the call's deadline reach the engine through a
// RequestControl.
//
// Thread-safety: thread-safe; gRPC calls the handlers concurrently.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "server/admission.h"
#include "server/security.h"
#include "src/analysis/analyzer.h"
#include "src/common/thread_pool.h"
#include "src/metrics/metrics.h"
#include "src/model/model_repository.h"

namespace audiotag {

struct ServiceOptions {
  // Largest upload accepted, by Analyze and AnalyzeStream alike.
  int64_t max_upload_bytes = int64_t{256} << 20;
  // Calls without a deadline, or with a longer one, get this one, counted
  // from the moment the call is accepted. Zero: none.
  absl::Duration max_deadline = absl::ZeroDuration();
  // Analyses accepted at once (uploading, running or waiting for a worker);
  // beyond it new calls get RESOURCE_EXHAUSTED at once. Zero: no limit.
  int max_inflight_requests = 0;
  // Memory budget of the calls in flight, in bytes: each is charged its
  // upload (an AnalyzeStream chunk by chunk, as it arrives) plus
  // `analysis_bytes_estimate` once its analysis is accepted. A call that
  // would pass it gets RESOURCE_EXHAUSTED at once. Zero: no limit.
  int64_t max_inflight_bytes = 0;
  // What one analysis holds besides its upload (decoded PCM, segments and
  // results in flight), in bytes; charged against `max_inflight_bytes`.
  int64_t analysis_bytes_estimate = int64_t{16} << 20;
  // An AnalyzeStream must send a message at least every `upload_timeout`, and
  // its upload must end within `upload_timeout` after the call is accepted
  // plus one second for every `min_upload_bytes_per_second` bytes received so
  // far; a stream that falls behind ends with DEADLINE_EXCEEDED and frees its
  // slot. Zero `upload_timeout`: only the call's deadline
  // bounds the upload; zero rate: the upload gets `upload_timeout` in all.
  absl::Duration upload_timeout = absl::Seconds(30);
  int64_t min_upload_bytes_per_second = int64_t{64} << 10;
  // When set, every AudioTagger call must carry a valid bearer token.
  const TokenAuthenticator* authenticator = nullptr;
  // Where calls are counted; may be null.
  Metrics* metrics = nullptr;
};

class AudioTaggerService final : public v1::AudioTagger::CallbackService {
 public:
  // `repository`, `analyzer` and `pool` must outlive the service.
  AudioTaggerService(const ModelRepository* repository,
                     const Analyzer* analyzer, ThreadPool* pool,
                     ServiceOptions options);

  grpc::ServerUnaryReactor* Analyze(grpc::CallbackServerContext* context,
                                    const v1::AnalyzeRequest* request,
                                    v1::AnalyzeResponse* response) override;
  grpc::ServerReadReactor<v1::AnalyzeStreamRequest>* AnalyzeStream(
      grpc::CallbackServerContext* context,
      v1::AnalyzeResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* context,
      const v1::ListModelsRequest* request,
      v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* GetModel(grpc::CallbackServerContext* context,
                                     const v1::GetModelRequest* request,
                                     v1::ModelInfo* response) override;

  // New calls fail with UNAVAILABLE from now on; calls already accepted finish.
  void StartDraining() { draining_.store(true); }

 private:
  class AnalyzeReactor;
  class StreamReactor;

  // The call's deadline, counted from now (its acceptance): the client's,
  // capped by `max_deadline`.
  absl::Time CallDeadline(const grpc::CallbackServerContext& context) const;
  std::shared_ptr<RequestControl> MakeControl(
      absl::Time deadline, const v1::AnalyzeOptions& options);
  // The bearer token, when the server requires one.
  absl::Status Authorize(const grpc::CallbackServerContext& context) const;
  // Draining, the in-flight limit and the byte budget: on OK the caller holds
  // one in-flight slot charged `bytes` until the Slot is destroyed.
  absl::StatusOr<AdmissionControl::Slot> Admit(int64_t bytes);
  // Runs one analysis on the pool and finishes `reactor` with its result.
  template <typename Reactor>
  void RunAnalysis(Reactor* reactor, absl::string_view method,
                   const std::string& audio, const v1::AnalyzeOptions& options,
                   std::string request_id,
                   std::shared_ptr<RequestControl> control,
                   v1::AnalyzeResponse* response);

  const ModelRepository* const repository_;
  const Analyzer* const analyzer_;
  ThreadPool* const pool_;
  const ServiceOptions options_;
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> next_request_id_{1};
  AdmissionControl admission_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_AUDIOTAG_SERVICE_H_
