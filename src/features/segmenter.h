#ifndef AUDIOTAG_SRC_FEATURES_SEGMENTER_H_
#define AUDIOTAG_SRC_FEATURES_SEGMENTER_H_

// Cuts a stream of samples into fixed-size, possibly overlapping segments as
// the samples arrive, holding at most one window of samples at a time.
//
// Thread-compatible: one Segmenter per stream.

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "audiotag/v1/model_config.pb.h"

namespace audiotag {

class Segmenter {
 public:
  // Called once per segment: its index (0, 1, ...), its first sample's
  // position in the stream, and exactly `window` samples (zero-padded for a
  // padded last segment). `valid_samples` is how many are real audio. A
  // non-OK return stops segmentation and is returned by Push/Finish.
  using Emit = std::function<absl::Status(int64_t index, int64_t start_sample,
                                          absl::Span<const float> samples,
                                          int64_t valid_samples)>;

  // window > 0, hop > 0 (samples).
  Segmenter(int64_t window, int64_t hop, v1::LastSegment last_segment);

  absl::Status Push(absl::Span<const float> samples, const Emit& emit);
  // Ends the stream: emits the padded last segment if the policy asks for it
  // (and, with LAST_SEGMENT_PAD, one padded segment for a stream shorter than
  // a window).
  absl::Status Finish(const Emit& emit);

  int64_t segments_emitted() const { return next_index_; }
  int64_t samples_seen() const { return samples_seen_; }

 private:
  const int64_t window_;
  const int64_t hop_;
  const v1::LastSegment last_segment_;
  std::vector<float> buffer_;  // samples from buffer_start_ on
  int64_t buffer_start_ = 0;   // stream position of buffer_[0]
  int64_t next_start_ = 0;     // stream position of the next segment
  int64_t next_index_ = 0;
  int64_t samples_seen_ = 0;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_SEGMENTER_H_
