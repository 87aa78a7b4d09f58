#include "src/audio/mono_resampler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
}

namespace audiotag::audio_internal {
namespace {

// The frame's layout, or the default one for its channel count when the file
// did not say which channels it holds.
absl::Status EffectiveLayout(const AVFrame& frame, AVChannelLayout* layout) {
  const int channels = frame.ch_layout.nb_channels;
  if (frame.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC ||
      av_channel_layout_check(&frame.ch_layout) == 0) {
    av_channel_layout_default(layout, channels);
    return absl::OkStatus();
  }
  const int err = av_channel_layout_copy(layout, &frame.ch_layout);
  if (err < 0) return AvErrorToStatus(err, "could not copy the channel layout");
  return absl::OkStatus();
}

}  // namespace

MonoResampler::MonoResampler(int rate_index, int output_rate,
                             int64_t max_chunk_samples, const PcmSink* sink)
    : rate_index_(rate_index),
      output_rate_(output_rate),
      max_chunk_samples_(std::max<int64_t>(max_chunk_samples, 1)),
      sink_(sink) {
  pending_.reserve(static_cast<size_t>(
      std::min<int64_t>(max_chunk_samples_, int64_t{1} << 20)));
}

MonoResampler::~MonoResampler() { av_channel_layout_uninit(&in_layout_); }

bool MonoResampler::Matches(const AVFrame& frame) const {
  return swr_ != nullptr && frame.format == in_format_ &&
         frame.sample_rate == in_rate_ &&
         frame.ch_layout.nb_channels == in_layout_.nb_channels;
}

absl::Status MonoResampler::Rebuild(const AVFrame& frame) {
  if (swr_ != nullptr) RETURN_IF_ERROR(FlushConverter());
  swr_.reset();
  av_channel_layout_uninit(&in_layout_);

  AVChannelLayout layout = {};
  RETURN_IF_ERROR(EffectiveLayout(frame, &layout));
  in_layout_ = layout;  // takes ownership of any custom map
  in_format_ = static_cast<AVSampleFormat>(frame.format);
  in_rate_ = frame.sample_rate;
  in_stretch_ = 0;
  out_stretch_ = 0;

  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  int err = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, output_rate_,
                                &in_layout_, in_format_, in_rate_, 0, nullptr);
  SwrContextPtr swr(raw);
  if (err < 0) return AvErrorToStatus(err, "could not set up the resampler");

  // Mono is the plain mean of the channels, whatever their positions.
  const int channels = in_layout_.nb_channels;
  std::vector<double> matrix(static_cast<size_t>(channels), 1.0 / channels);
  err = swr_set_matrix(swr.get(), matrix.data(), channels);
  if (err < 0) return AvErrorToStatus(err, "could not set the downmix matrix");
  err = swr_init(swr.get());
  if (err < 0) {
    return AvErrorToStatus(
        err, absl::StrCat("could not convert ", channels, " channels at ",
                          in_rate_, " Hz to mono at ", output_rate_, " Hz"));
  }
  swr_ = std::move(swr);
  return absl::OkStatus();
}

absl::Status MonoResampler::Push(const AVFrame& frame, int samples) {
  samples = std::clamp(samples, 0, frame.nb_samples);
  if (samples == 0) return absl::OkStatus();
  if (!Matches(frame)) RETURN_IF_ERROR(Rebuild(frame));
  in_stretch_ += samples;
  return Convert(const_cast<const uint8_t**>(frame.extended_data), samples);
}

int64_t MonoResampler::StretchTarget() const {
  if (in_rate_ <= 0) return 0;
  // Exact in 64 bits: at most a few hours at 768 kHz times 384 kHz.
  return (in_stretch_ * output_rate_ + in_rate_ - 1) / in_rate_;
}

absl::Status MonoResampler::Convert(const uint8_t** in, int in_samples) {
  const int capacity = swr_get_out_samples(swr_.get(), in_samples);
  if (capacity < 0) return AvErrorToStatus(capacity, "resampler failed");
  if (capacity == 0 && in != nullptr) {
    // Still feed the input so it enters the delay line.
    const int got = swr_convert(swr_.get(), nullptr, 0, in, in_samples);
    if (got < 0) return AvErrorToStatus(got, "resampler failed");
    return absl::OkStatus();
  }
  if (scratch_.size() < static_cast<size_t>(capacity)) {
    scratch_.resize(static_cast<size_t>(capacity));
  }
  uint8_t* out = reinterpret_cast<uint8_t*>(scratch_.data());
  const int got = swr_convert(swr_.get(), &out, capacity, in, in_samples);
  if (got < 0) return AvErrorToStatus(got, "resampler failed");
  const int64_t keep = std::clamp<int64_t>(StretchTarget() - out_stretch_, 0,
                                           static_cast<int64_t>(got));
  out_stretch_ += keep;
  return Emit(scratch_.data(), keep);
}

absl::Status MonoResampler::Emit(const float* data, int64_t count) {
  while (count > 0) {
    if (pending_.empty() && count >= max_chunk_samples_) {
      RETURN_IF_ERROR(
          (*sink_)(rate_index_, absl::MakeConstSpan(data, max_chunk_samples_)));
      samples_out_ += max_chunk_samples_;
      data += max_chunk_samples_;
      count -= max_chunk_samples_;
      continue;
    }
    const int64_t room =
        max_chunk_samples_ - static_cast<int64_t>(pending_.size());
    const int64_t n = std::min(room, count);
    pending_.insert(pending_.end(), data, data + n);
    data += n;
    count -= n;
    if (static_cast<int64_t>(pending_.size()) == max_chunk_samples_) {
      RETURN_IF_ERROR((*sink_)(rate_index_, pending_));
      samples_out_ += max_chunk_samples_;
      pending_.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status MonoResampler::FlushConverter() {
  const int64_t target = StretchTarget();
  if (out_stretch_ < target) {
    // Silence after the stretch's end lets the filter reach it. Feeding it
    // (rather than relying on the drain) is what makes an input shorter than
    // the filter come out at all. Bounded: a filter spans a few hundred
    // input samples at any sane ratio.
    constexpr int kSilenceChunk = 4096;
    const int channels = in_layout_.nb_channels;
    uint8_t** silence = nullptr;
    int linesize = 0;
    const int err = av_samples_alloc_array_and_samples(
        &silence, &linesize, channels, kSilenceChunk, in_format_, 0);
    if (err < 0) return AvErrorToStatus(err, "could not allocate silence");
    av_samples_set_silence(silence, 0, kSilenceChunk, channels, in_format_);
    const int64_t ratio = in_rate_ / output_rate_ + 1;
    int64_t budget = (target - out_stretch_ + 64) * ratio + 65536;
    absl::Status status;
    // Upsampling by a large factor (1 Hz to 16 kHz): a chunk's output, not
    // its input, is what must stay small.
    const int chunk = static_cast<int>(std::clamp<int64_t>(
        int64_t{65536} * in_rate_ / output_rate_, 1, kSilenceChunk));
    while (status.ok() && out_stretch_ < target && budget > 0) {
      const int n = static_cast<int>(std::min<int64_t>(chunk, budget));
      status = Convert(const_cast<const uint8_t**>(silence), n);
      budget -= n;
    }
    av_freep(&silence[0]);
    av_freep(&silence);
    RETURN_IF_ERROR(status);
  }
  // Each drain call returns at most one buffer's worth; stop when dry (or
  // when the stretch is complete: the rest is dropped anyway).
  while (out_stretch_ < target) {
    const int64_t before = out_stretch_;
    RETURN_IF_ERROR(Convert(nullptr, 0));
    if (out_stretch_ == before) break;
  }
  const std::vector<float> zeros(
      static_cast<size_t>(std::clamp<int64_t>(target - out_stretch_, 0, 4096)),
      0.0f);
  while (out_stretch_ < target) {
    const int64_t n = std::min(target - out_stretch_, std::ssize(zeros));
    out_stretch_ += n;
    RETURN_IF_ERROR(Emit(zeros.data(), n));
  }
  return absl::OkStatus();
}

absl::Status MonoResampler::Finish() {
  if (swr_ != nullptr) RETURN_IF_ERROR(FlushConverter());
  if (!pending_.empty()) {
    RETURN_IF_ERROR((*sink_)(rate_index_, pending_));
    samples_out_ += static_cast<int64_t>(pending_.size());
    pending_.clear();
  }
  swr_.reset();
  av_channel_layout_uninit(&in_layout_);
  return absl::OkStatus();
}

}  // namespace audiotag::audio_internal
