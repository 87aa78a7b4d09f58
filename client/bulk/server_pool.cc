#include "client/bulk/server_pool.h"

namespace audiotag::bulk {

ServerPool::ServerPool(const std::vector<std::string>& targets,
                       const ClientOptions& base) {
  for (const std::string& target : targets) {
    ClientOptions options = base;
    options.server = target;
    options.load_balancing_policy = "round_robin";
    clients_.push_back(std::make_unique<AudioTagClient>(options));
  }
  in_flight_.assign(clients_.size(), 0);
}

int ServerPool::Acquire() {
  absl::MutexLock lock(&mu_);
  const size_t n = clients_.size();
  size_t best = next_ % n;
  for (size_t k = 1; k < n; ++k) {
    const size_t i = (next_ + k) % n;
    if (in_flight_[i] < in_flight_[best]) best = i;
  }
  next_ = best + 1;
  ++in_flight_[best];
  return static_cast<int>(best);
}

void ServerPool::Release(int index) {
  absl::MutexLock lock(&mu_);
  --in_flight_[index];
}

absl::StatusOr<v1::AnalyzeResponse> ServerPool::Analyze(
    const std::string& audio, const v1::AnalyzeOptions& options) {
  const int index = Acquire();
  absl::StatusOr<v1::AnalyzeResponse> response =
      clients_[index]->Analyze(audio, options);
  Release(index);
  return response;
}

}  // namespace audiotag::bulk
