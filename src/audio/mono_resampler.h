#ifndef AUDIOTAG_SRC_AUDIO_MONO_RESAMPLER_H_
#define AUDIOTAG_SRC_AUDIO_MONO_RESAMPLER_H_

// Turns decoded FFmpeg frames of any sample format and channel layout into
// mono float samples at one output rate, and hands them to a PcmSink in
// chunks of a bounded size. Internal to src/audio; one instance per output
// rate of one DecodeAudio call, not thread-safe.
//
// Length: each stretch of input at one rate (the whole file, or one link of
// a chained Ogg) of n samples comes out as libswresample makes it (as the
// ffmpeg CLI does: within a sample of n * output_rate / input_rate), and at
// least max(1, floor(n * output_rate / input_rate)) samples. libswresample
// alone gives nothing for an input shorter than its filter (one sample at
// 44.1 kHz -> 16 kHz): such a stretch (up to kRetainSamples long, kept for
// this) is converted again followed by silence, and completed from that.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

  // Converts the first `samples` samples (per channel) of `frame`, at most
  // frame.nb_samples, (whose format, rate and layout may differ from the
  // previous frame's: the converter is then flushed and rebuilt) and passes
  // every complete chunk to the sink. Returns the sink's error unchanged.
  absl::Status Push(const AVFrame& frame, int samples);
  absl::Status Push(const AVFrame& frame) {
    return Push(frame, frame.nb_samples);
  }

  // Drains the converter's delay line and hands over the last partial chunk.
  absl::Status Finish();

 private:
  bool Matches(const AVFrame& frame) const;
  absl::Status Rebuild(const AVFrame& frame);
  // Inputs up to this many samples are kept until the stretch ends.
  static constexpr int kRetainSamples = 8192;

  absl::StatusOr<SwrContextPtr> MakeConverter() const;
  // Keeps a copy of the frame's first `samples` samples while the stretch
  // is short.
  absl::Status Retain(const AVFrame& frame, int samples);
  void FreeRetained();
  // Runs swr_convert; a null `in` drains the converter.
  absl::Status Convert(const uint8_t** in, int in_samples);
  absl::Status Emit(const float* data, int64_t count);
  // Ends the current stretch: drains the converter and completes a short
  // stretch to StretchMinimum().
  absl::Status FlushConverter();
  // Completes a retained stretch to `minimum` samples (see the top).
  absl::Status Redo(int64_t minimum);
  // max(1, floor(in_stretch_ * output_rate_ / in_rate_)), 0 for no input.
  int64_t StretchMinimum() const;

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
  // Input consumed and output produced since the converter was (re)built.
  int64_t in_stretch_ = 0;
  int64_t out_stretch_ = 0;
  // The stretch's input while it is at most kRetainSamples long.
  bool retaining_ = true;
  uint8_t** retained_ = nullptr;
};

}  // namespace audiotag::audio_internal

#endif  // AUDIOTAG_SRC_AUDIO_MONO_RESAMPLER_H_
