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

MonoResampler::~MonoResampler() {
  FreeRetained();
  av_channel_layout_uninit(&in_layout_);
}

void MonoResampler::FreeRetained() {
  if (retained_ != nullptr) av_freep(&retained_[0]);
  av_freep(&retained_);
}

bool MonoResampler::Matches(const AVFrame& frame) const {
  return swr_ != nullptr && frame.format == in_format_ &&
         frame.sample_rate == in_rate_ &&
         frame.ch_layout.nb_channels == in_layout_.nb_channels;
}

absl::StatusOr<SwrContextPtr> MonoResampler::MakeConverter() const {
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  int err = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, output_rate_,
                                const_cast<AVChannelLayout*>(&in_layout_),
                                in_format_, in_rate_, 0, nullptr);
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
  return swr;
}

absl::Status MonoResampler::Rebuild(const AVFrame& frame) {
  if (swr_ != nullptr) RETURN_IF_ERROR(FlushConverter());
  swr_.reset();
  FreeRetained();
  av_channel_layout_uninit(&in_layout_);

  AVChannelLayout layout = {};
  RETURN_IF_ERROR(EffectiveLayout(frame, &layout));
  in_layout_ = layout;  // takes ownership of any custom map
  in_format_ = static_cast<AVSampleFormat>(frame.format);
  in_rate_ = frame.sample_rate;
  in_stretch_ = 0;
  out_stretch_ = 0;
  retaining_ = true;
  ASSIGN_OR_RETURN(swr_, MakeConverter());
  return absl::OkStatus();
}

absl::Status MonoResampler::Push(const AVFrame& frame, int samples) {
  samples = std::clamp(samples, 0, frame.nb_samples);
  if (samples == 0) return absl::OkStatus();
  if (!Matches(frame)) RETURN_IF_ERROR(Rebuild(frame));
  RETURN_IF_ERROR(Retain(frame, samples));
  in_stretch_ += samples;
  return Convert(const_cast<const uint8_t**>(frame.extended_data), samples);
}

absl::Status MonoResampler::Retain(const AVFrame& frame, int samples) {
  if (!retaining_) return absl::OkStatus();
  const int channels = in_layout_.nb_channels;
  if (in_stretch_ + samples > kRetainSamples) {
    retaining_ = false;  // long enough for the converter alone
    FreeRetained();
    return absl::OkStatus();
  }
  if (retained_ == nullptr) {
    const int err = av_samples_alloc_array_and_samples(
        &retained_, nullptr, channels, kRetainSamples, in_format_, 0);
    if (err < 0) return AvErrorToStatus(err, "could not allocate a buffer");
  }
  av_samples_copy(retained_, frame.extended_data, static_cast<int>(in_stretch_),
                  0, samples, channels, in_format_);
  return absl::OkStatus();
}

int64_t MonoResampler::StretchMinimum() const {
  if (in_stretch_ == 0 || in_rate_ <= 0) return 0;
  // Exact in 64 bits: hours at 768 kHz times 384 kHz.
  return std::max<int64_t>(1, in_stretch_ * output_rate_ / in_rate_);
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
  out_stretch_ += got;
  return Emit(scratch_.data(), got);
}

absl::Status MonoResampler::Emit(const float* data, int64_t count) {
  while (count > 0) {
    if (pending_.empty() && count >= max_chunk_samples_) {
      RETURN_IF_ERROR(
          (*sink_)(rate_index_, absl::MakeConstSpan(data, max_chunk_samples_)));
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
      pending_.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status MonoResampler::FlushConverter() {
  // Each drain call returns at most one buffer's worth; stop when dry.
  for (;;) {
    const int64_t before = out_stretch_;
    RETURN_IF_ERROR(Convert(nullptr, 0));
    if (out_stretch_ == before) break;
  }
  const int64_t minimum = StretchMinimum();
  if (out_stretch_ < minimum && retaining_ && in_stretch_ > 0) {
    RETURN_IF_ERROR(Redo(minimum));
  }
  // Not expected (a long stretch comes out at its length); keeps the promise.
  const std::vector<float> zeros(
      static_cast<size_t>(std::clamp<int64_t>(minimum - out_stretch_, 0, 4096)),
      0.0f);
  while (out_stretch_ < minimum) {
    const int64_t n = std::min(minimum - out_stretch_, std::ssize(zeros));
    out_stretch_ += n;
    RETURN_IF_ERROR(Emit(zeros.data(), n));
  }
  return absl::OkStatus();
}

absl::Status MonoResampler::Redo(int64_t minimum) {
  // A fresh converter gets the stretch again, then silence until the
  // filter has reached the stretch's end; its samples past those already
  // handed over (identical up to there: the same input) complete it.
  ASSIGN_OR_RETURN(SwrContextPtr swr, MakeConverter());
  std::vector<float> out;
  const auto convert = [&](const uint8_t** in, int count) -> absl::Status {
    const int capacity = swr_get_out_samples(swr.get(), count);
    if (capacity < 0) return AvErrorToStatus(capacity, "resampler failed");
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(capacity));
    uint8_t* dst = reinterpret_cast<uint8_t*>(out.data() + at);
    const int got = swr_convert(swr.get(), &dst, capacity, in, count);
    if (got < 0) return AvErrorToStatus(got, "resampler failed");
    out.resize(at + static_cast<size_t>(got));
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(convert(const_cast<const uint8_t**>(retained_),
                          static_cast<int>(in_stretch_)));
  // Silence in chunks whose output stays small even when upsampling 1 Hz.
  const int channels = in_layout_.nb_channels;
  const int chunk = static_cast<int>(std::clamp<int64_t>(
      int64_t{4096} * in_rate_ / output_rate_, 1, kRetainSamples));
  uint8_t** silence = nullptr;
  int err = av_samples_alloc_array_and_samples(&silence, nullptr, channels,
                                               chunk, in_format_, 0);
  if (err < 0) return AvErrorToStatus(err, "could not allocate a buffer");
  av_samples_set_silence(silence, 0, chunk, channels, in_format_);
  absl::Status status;
  // A filter spans well under kRetainSamples input samples at any ratio
  // libswresample supports.
  for (int64_t fed = 0; status.ok() && std::ssize(out) < minimum &&
                        fed < 2 * int64_t{kRetainSamples};
       fed += chunk) {
    status = convert(const_cast<const uint8_t**>(silence), chunk);
  }
  av_freep(&silence[0]);
  av_freep(&silence);
  RETURN_IF_ERROR(status);
  const int64_t end = std::min<int64_t>(minimum, std::ssize(out));
  if (end <= out_stretch_) return absl::OkStatus();
  const int64_t n = end - out_stretch_;
  const float* from = out.data() + out_stretch_;
  out_stretch_ = end;
  return Emit(from, n);
}

absl::Status MonoResampler::Finish() {
  if (swr_ != nullptr) RETURN_IF_ERROR(FlushConverter());
  if (!pending_.empty()) {
    RETURN_IF_ERROR((*sink_)(rate_index_, pending_));
    pending_.clear();
  }
  swr_.reset();
  FreeRetained();
  av_channel_layout_uninit(&in_layout_);
  return absl::OkStatus();
}

}  // namespace audiotag::audio_internal
