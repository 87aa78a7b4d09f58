#ifndef AUDIOTAG_SRC_AUDIO_MONO_RESAMPLER_H_
#define AUDIOTAG_SRC_AUDIO_MONO_RESAMPLER_H_

// Turns decoded FFmpeg frames of any sample format and channel layout into
// mono float samples at one output rate, and hands them to a PcmSink in
// chunks of a bounded size. Internal to src/audio; one instance per output
// rate of one DecodeAudio call, not thread-safe.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "src/audio/decoder.h"
#include "src/audio/ffmpeg_util.h"

namespace audiotag::audio_internal {

class MonoResampler {
 public:
  // `sink` must outlive the resampler. Chunks hold at most `max_chunk_samples`
  // samples and are tagged with `rate_index`.
  MonoResampler(int rate_index, int output_rate, int64_t max_chunk_samples,
                const PcmSink* sink);
  ~MonoResampler();

  MonoResampler(const MonoResampler&) = delete;
  MonoResampler& operator=(const MonoResampler&) = delete;

  // Converts `frame` (whose format, rate and layout may differ from the
  // previous frame's: the converter is then flushed and rebuilt) and passes
  // every complete chunk to the sink. Returns the sink's error unchanged.
  absl::Status Push(const AVFrame& frame);

  // Drains the converter's delay line and hands over the last partial chunk.
  absl::Status Finish();

  // Samples handed to the sink so far.
  int64_t samples_out() const { return samples_out_; }

 private:
  bool Matches(const AVFrame& frame) const;
  absl::Status Rebuild(const AVFrame& frame);
  // Runs swr_convert; a null `in` drains the converter.
  absl::Status Convert(const uint8_t** in, int in_samples);
  absl::Status Emit(const float* data, int64_t count);
  absl::Status FlushConverter();

  const int rate_index_;
  const int output_rate_;
  const int64_t max_chunk_samples_;
  const PcmSink* const sink_;

  SwrContextPtr swr_;
  AVSampleFormat in_format_ = AV_SAMPLE_FMT_NONE;
  int in_rate_ = 0;
  AVChannelLayout in_layout_ = {};
  std::vector<float> scratch_;
  std::vector<float> pending_;
  int64_t samples_out_ = 0;
};

}  // namespace audiotag::audio_internal

#endif  // AUDIOTAG_SRC_AUDIO_MONO_RESAMPLER_H_
