#include "client/bulk/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace audiotag::bulk {

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kDeadlineExceeded;
}

absl::Duration BackoffDelay(const RetryPolicy& policy, int retry,
                            absl::BitGen& random) {
  const double bound =
      std::min(absl::ToDoubleSeconds(policy.max),
               absl::ToDoubleSeconds(policy.base) * std::ldexp(1.0, retry));
  return absl::Seconds(
      absl::Uniform(absl::IntervalClosed, random, 0.0, std::max(bound, 0.0)));
}

absl::Status CallWithRetries(const RetryPolicy& policy,
                             const std::function<absl::Status()>& attempt,
                             int* attempts) {
  absl::BitGen random;
  *attempts = 0;
  for (int retry = 0;; ++retry) {
    ++*attempts;
    absl::Status status = attempt();
    if (status.ok() || !IsRetryable(status.code()) ||
        retry >= policy.max_retries) {
      return status;
    }
    absl::SleepFor(BackoffDelay(policy, retry, random));
  }
}

}  // namespace audiotag::bulk
