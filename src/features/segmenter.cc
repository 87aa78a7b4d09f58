#include "src/features/segmenter.h"

#include <algorithm>
#include <limits>

#include "src/common/status_macros.h"

namespace audiotag {

Segmenter::Segmenter(int64_t window, int64_t hop, v1::LastSegment last_segment,
                     bool center)
    : window_(window),
      hop_(hop),
      last_segment_(last_segment),
      lead_(center ? window / 2 : 0) {
  buffer_.reserve(window_);
}

int64_t Segmenter::Valid(int64_t start, int64_t audio_end) const {
  const int64_t first = std::max(start, lead_);
  const int64_t last = std::min(start + window_, audio_end);
  return std::max<int64_t>(0, last - first);
}

absl::Status Segmenter::Push(absl::Span<const float> samples,
                             const Emit& emit) {
  if (samples.empty()) return absl::OkStatus();
  if (!lead_pushed_) {
    lead_pushed_ = true;
    if (lead_ > 0) {
      const std::vector<float> zeros(lead_, 0.0f);
      RETURN_IF_ERROR(PushStream(zeros, emit));
    }
  }
  samples_seen_ += static_cast<int64_t>(samples.size());
  return PushStream(samples, emit);
}

// buffer_ always holds the stream's samples from next_start_ on, at most one
// window of them; when hop > window the samples between segments are never
// buffered.
absl::Status Segmenter::PushStream(absl::Span<const float> samples,
                                   const Emit& emit) {
  const int64_t pos = stream_seen_;  // stream position of samples[0]
  const int64_t n = static_cast<int64_t>(samples.size());
  stream_seen_ += n;
  const int64_t audio_end = lead_ + samples_seen_;
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
    RETURN_IF_ERROR(emit(next_index_, next_start_ - lead_, buffer_,
                         Valid(next_start_, audio_end)));
    ++next_index_;
    next_start_ += hop_;
    buffer_.erase(buffer_.begin(),
                  buffer_.begin() + std::min<int64_t>(hop_, window_));
  }
  return absl::OkStatus();
}

absl::Status Segmenter::Finish(const Emit& emit) {
  // End of the last emitted segment: audio before it is already covered.
  const int64_t covered_end =
      next_index_ > 0 ? next_start_ - hop_ + window_ : 0;
  const int64_t audio_end = lead_ + samples_seen_;
  const bool uncovered =
      samples_seen_ > 0 &&
      audio_end > std::max({next_start_, covered_end, lead_});
  const bool pads = last_segment_ == v1::LAST_SEGMENT_PAD ||
                    last_segment_ == v1::LAST_SEGMENT_PAD_FEATURES;
  if (!pads || !uncovered) {
    buffer_.clear();
    return absl::OkStatus();
  }
  const float fill = last_segment_ == v1::LAST_SEGMENT_PAD_FEATURES
                         ? std::numeric_limits<float>::quiet_NaN()
                         : 0.0f;
  buffer_.resize(window_, fill);
  RETURN_IF_ERROR(emit(next_index_, next_start_ - lead_, buffer_,
                       Valid(next_start_, audio_end)));
  ++next_index_;
  next_start_ += hop_;
  buffer_.clear();
  return absl::OkStatus();
}

}  // namespace audiotag
