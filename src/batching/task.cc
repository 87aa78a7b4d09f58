#include "src/batching/task.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace audiotag {

absl::Status RequestControl::CheckAlive(absl::Time now) const {
  if (cancelled()) {
    return absl::CancelledError(absl::StrCat("request ", id_, " cancelled"));
  }
  if (now >= deadline_) {
    return absl::DeadlineExceededError(
        absl::StrCat("request ", id_, " passed its deadline"));
  }
  return absl::OkStatus();
}

void SegmentFeed::RecordArrival(absl::Time now) {
  const int64_t now_ns = absl::ToUnixNanos(now);
  const int64_t last = last_arrival_ns_.exchange(now_ns);
  if (last == 0) return;
  const int64_t gap = std::max<int64_t>(0, now_ns - last);
  const int64_t mean = mean_gap_ns_.load(std::memory_order_relaxed);
  // An exponential mean over roughly the last four gaps.
  mean_gap_ns_.store(mean < 0 ? gap : mean + (gap - mean) / 4,
                     std::memory_order_relaxed);
}

absl::Time SegmentFeed::last_arrival() const {
  const int64_t ns = last_arrival_ns_.load();
  return ns == 0 ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

absl::Duration SegmentFeed::mean_gap() const {
  const int64_t ns = mean_gap_ns_.load(std::memory_order_relaxed);
  return ns < 0 ? absl::InfiniteDuration() : absl::Nanoseconds(ns);
}

}  // namespace audiotag
