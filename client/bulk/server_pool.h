#ifndef AUDIOTAG_CLIENT_BULK_SERVER_POOL_H_
#define AUDIOTAG_CLIENT_BULK_SERVER_POOL_H_

// Client-side balancing over several audiotag servers: one channel per
// target, each call sent to the target with the fewest calls in flight (ties
// go round-robin). Every channel also uses gRPC's round_robin policy, so a
// single "dns:///svc:50051" target spreads over all the addresses it
// resolves to (e.g. the pods behind a headless Service).
//
// Thread-safety: thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/audiotag_client.h"

namespace audiotag::bulk {

class ServerPool {
 public:
  // `targets` must not be empty; `base` gives every other client option.
  ServerPool(const std::vector<std::string>& targets,
             const ClientOptions& base);

  absl::StatusOr<v1::AnalyzeResponse> Analyze(
      const std::string& audio, const v1::AnalyzeOptions& options);

  int size() const { return static_cast<int>(clients_.size()); }

 private:
  int Acquire();
  void Release(int index);

  std::vector<std::unique_ptr<AudioTagClient>> clients_;
  absl::Mutex mu_;
  std::vector<int> in_flight_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_SERVER_POOL_H_
