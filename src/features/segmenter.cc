#include "src/features/segmenter.h"

#include <algorithm>

#include "src/common/status_macros.h"

namespace audiotag {

Segmenter::Segmenter(int64_t window, int64_t hop, v1::LastSegment last_segment)
    : window_(window), hop_(hop), last_segment_(last_segment) {
  buffer_.reserve(window_);
}

// buffer_ always holds the stream's samples from next_start_ on, at most one
// window of them; when hop > window the samples between segments are never
// buffered.
absl::Status Segmenter::Push(absl::Span<const float> samples,
                             const Emit& emit) {
  const int64_t pos = samples_seen_;  // stream position of samples[0]
  const int64_t n = static_cast<int64_t>(samples.size());
  samples_seen_ += n;
  int64_t i = 0;
  while (i < n) {
    if (buffer_.empty() && pos + i < next_start_) {
      i += std::min(next_start_ - (pos + i), n - i);
      continue;
    }
    const int64_t take =
        std::min(window_ - static_cast<int64_t>(buffer_.size()), n - i);
    buffer_.insert(buffer_.end(), samples.begin() + i,
                   samples.begin() + i + take);
    i += take;
    if (static_cast<int64_t>(buffer_.size()) < window_) break;
    RETURN_IF_ERROR(emit(next_index_, next_start_, buffer_, window_));
    ++next_index_;
    next_start_ += hop_;
    buffer_.erase(buffer_.begin(),
                  buffer_.begin() + std::min<int64_t>(hop_, window_));
    buffer_start_ = next_start_;
  }
  return absl::OkStatus();
}

absl::Status Segmenter::Finish(const Emit& emit) {
  // End of the last emitted segment: samples before it are already covered.
  const int64_t covered_end =
      next_index_ > 0 ? next_start_ - hop_ + window_ : 0;
  const bool uncovered = samples_seen_ > std::max(next_start_, covered_end);
  if (last_segment_ != v1::LAST_SEGMENT_PAD || !uncovered) {
    buffer_.clear();
    return absl::OkStatus();
  }
  const int64_t valid = static_cast<int64_t>(buffer_.size());
  buffer_.resize(window_, 0.0f);
  RETURN_IF_ERROR(emit(next_index_, next_start_, buffer_, valid));
  ++next_index_;
  next_start_ += hop_;
  buffer_start_ = next_start_;
  buffer_.clear();
  return absl::OkStatus();
}

}  // namespace audiotag
