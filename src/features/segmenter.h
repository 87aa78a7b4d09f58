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
  // position in the audio (negative for the first windows of a centred
  // stream, which begin in the leading zeros), exactly `window` samples, and
  // `valid_samples`, how many of them are real audio (the rest is the
  // centring's leading zeros or the last segment's padding). The padding of
  // a padded last segment is zeros for LAST_SEGMENT_PAD and NaN for
  // LAST_SEGMENT_PAD_FEATURES, which tells the log-mel front-end where the
  // audio ends (decoded audio is always finite). A non-OK return stops
  // segmentation and is returned by Push/Finish.
  using Emit = std::function<absl::Status(int64_t index, int64_t start_sample,
                                          absl::Span<const float> samples,
                                          int64_t valid_samples)>;

  // window > 0, hop > 0 (samples). `center`: the stream is preceded by
  // window / 2 zeros (SegmentConfig.center), so window k is centred on
  // sample k * hop of the audio.
  Segmenter(int64_t window, int64_t hop, v1::LastSegment last_segment,
            bool center = false);

  absl::Status Push(absl::Span<const float> samples, const Emit& emit);
  // Ends the stream: emits the padded last segment if the policy pads and
  // some audio is not yet covered (a stream shorter than a window gives one
  // padded segment; an empty stream none).
  absl::Status Finish(const Emit& emit);

  int64_t segments_emitted() const { return next_index_; }
  // Samples of audio pushed (the centring's zeros not counted).
  int64_t samples_seen() const { return samples_seen_; }

 private:
  // Push in stream positions (the leading zeros included).
  absl::Status PushStream(absl::Span<const float> samples, const Emit& emit);
  // Real audio samples in the window starting at stream position `start`,
  // given that the audio ends at stream position `audio_end`.
  int64_t Valid(int64_t start, int64_t audio_end) const;

  const int64_t window_;
  const int64_t hop_;
  const v1::LastSegment last_segment_;
  const int64_t lead_;         // leading zeros: window / 2 when centred
  bool lead_pushed_ = false;   // the leading zeros went in
  std::vector<float> buffer_;  // stream samples from next_start_ on
  int64_t stream_seen_ = 0;    // stream samples seen, leading zeros included
  int64_t next_start_ = 0;     // stream position of the next segment
  int64_t next_index_ = 0;
  int64_t samples_seen_ = 0;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_SEGMENTER_H_
