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

#include "absl/time/time.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "server/security.h"
#include "src/analysis/analyzer.h"
#include "src/common/thread_pool.h"
#include "src/metrics/metrics.h"
#include "src/model/model_repository.h"

namespace audiotag {

struct ServiceOptions {
  // Largest upload accepted, by Analyze and AnalyzeStream alike.
  int64_t max_upload_bytes = int64_t{256} << 20;
  // Calls without a deadline, or with a longer one, get this one. Zero: none.
  absl::Duration max_deadline = absl::ZeroDuration();
  // Analyses accepted at once (running or waiting for a worker); beyond it
  // new calls get RESOURCE_EXHAUSTED at once. Zero: no limit.
  int max_inflight_requests = 0;
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

  std::shared_ptr<RequestControl> MakeControl(
      grpc::CallbackServerContext* context, const v1::AnalyzeOptions& options);
  // Authentication, draining and the in-flight limit; on OK the caller owns
  // one in-flight slot and must call Release() when its analysis ends.
  absl::Status Admit(const grpc::CallbackServerContext& context, bool analysis);
  void Release() { inflight_.fetch_sub(1); }
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
  std::atomic<int> inflight_{0};
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_AUDIOTAG_SERVICE_H_
