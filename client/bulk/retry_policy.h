#ifndef AUDIOTAG_CLIENT_BULK_RETRY_POLICY_H_
#define AUDIOTAG_CLIENT_BULK_RETRY_POLICY_H_

// When and how long a bulk job waits before calling again: exponential
// backoff with full jitter for the codes a server uses to say "not now".

#include <functional>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace audiotag::bulk {

struct RetryPolicy {
  // Retries after the first attempt. Default 6.
  int max_retries = 6;
  // The first backoff's upper bound; doubles per retry. Default 200 ms.
  absl::Duration base = absl::Milliseconds(200);
  // Cap on one backoff. Default 30 s.
  absl::Duration max = absl::Seconds(30);
};

// UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED: worth another try.
bool IsRetryable(absl::StatusCode code);

// A uniformly random delay in [0, min(max, base * 2^retry)] ("full jitter");
// `retry` counts from 0.
absl::Duration BackoffDelay(const RetryPolicy& policy, int retry,
                            absl::BitGen& random);

// Calls `attempt` until it succeeds, fails with a code that is not
// retryable, or has been retried policy.max_retries times, sleeping
// BackoffDelay between tries. `attempts` receives the number of calls.
absl::Status CallWithRetries(const RetryPolicy& policy,
                             const std::function<absl::Status()>& attempt,
                             int* attempts);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_RETRY_POLICY_H_
