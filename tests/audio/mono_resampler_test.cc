// MonoResampler (src/audio/mono_resampler.h) on frames built here, the way
// the decoder hands them over: rates up and down (odd ones included), the
// plain-mean downmix of any channel count and sample format, the flush of
// the resampler's delay line so that short inputs give their proportional
// length, a rate change mid-stream, chunking, and the sink's errors.

#include "src/audio/mono_resampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numbers>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/audio/ffmpeg_util.h"

extern "C" {
#include <libavutil/channel_layout.h>
#include <libavutil/frame.h>
#include <libavutil/samplefmt.h>
}

namespace audiotag::audio_internal {
namespace {

// Sample `i` of channel `channel`, in [-1, 1].
using Signal = std::function<float(int channel, int64_t i)>;

// Input in frames of this many samples, as a decoder gives them.
constexpr int kFrameSamples = 1024;

// A frame of `samples` samples per channel of `signal` from sample `first`
// on, in `format` (FLT, FLTP or S16) with the default layout for `channels`.
FramePtr MakeFrame(AVSampleFormat format, int rate, int channels, int64_t first,
                   int samples, const Signal& signal) {
  FramePtr frame(av_frame_alloc());
  frame->format = format;
  frame->sample_rate = rate;
  frame->nb_samples = samples;
  av_channel_layout_default(&frame->ch_layout, channels);
  EXPECT_EQ(av_frame_get_buffer(frame.get(), 0), 0);
  for (int c = 0; c < channels; ++c) {
    for (int i = 0; i < samples; ++i) {
      const float x = signal(c, first + i);
      switch (format) {
        case AV_SAMPLE_FMT_FLT:
          reinterpret_cast<float*>(frame->data[0])[i * channels + c] = x;
          break;
        case AV_SAMPLE_FMT_FLTP:
          reinterpret_cast<float*>(frame->extended_data[c])[i] = x;
          break;
        case AV_SAMPLE_FMT_S16:
          reinterpret_cast<int16_t*>(frame->data[0])[i * channels + c] =
              static_cast<int16_t>(std::lround(x * 32767.0f));
          break;
        default:
          ADD_FAILURE() << "no test support for format " << format;
      }
    }
  }
  return frame;
}

// What the sink received.
struct Received {
  std::vector<float> samples;
  std::vector<size_t> chunk_sizes;
};

class Resampling {
 public:
  explicit Resampling(int output_rate,
                      int64_t max_chunk_samples = int64_t{1} << 20)
      : sink_([this](int rate_index, absl::Span<const float> chunk) {
          EXPECT_EQ(rate_index, 3);
          received_.samples.insert(received_.samples.end(), chunk.begin(),
                                   chunk.end());
          received_.chunk_sizes.push_back(chunk.size());
          return sink_status_;
        }),
        resampler_(/*rate_index=*/3, output_rate, max_chunk_samples, &sink_) {}

  // `n` samples per channel of `signal`, from sample `first` on, in frames
  // of kFrameSamples.
  absl::Status Push(int rate, int channels, int64_t n, const Signal& signal,
                    AVSampleFormat format = AV_SAMPLE_FMT_FLTP,
                    int64_t first = 0) {
    for (int64_t at = 0; at < n; at += kFrameSamples) {
      const int samples =
          static_cast<int>(std::min<int64_t>(kFrameSamples, n - at));
      FramePtr frame =
          MakeFrame(format, rate, channels, first + at, samples, signal);
      if (absl::Status s = resampler_.Push(*frame); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Finish() { return resampler_.Finish(); }
  MonoResampler& resampler() { return resampler_; }
  const Received& received() const { return received_; }
  void set_sink_status(absl::Status status) { sink_status_ = status; }

 private:
  Received received_;
  absl::Status sink_status_;
  const PcmSink sink_;
  MonoResampler resampler_;
};

Signal Sine(double frequency, int rate, double amplitude = 0.5) {
  return [=](int, int64_t i) {
    return static_cast<float>(
        amplitude * std::sin(2 * std::numbers::pi * frequency * i / rate));
  };
}

Signal Constant(std::vector<float> per_channel) {
  return [per_channel](int channel, int64_t) { return per_channel[channel]; };
}

std::vector<float> ResampleAll(int in_rate, int out_rate, int channels,
                               int64_t n, const Signal& signal,
                               AVSampleFormat format = AV_SAMPLE_FMT_FLTP) {
  Resampling r(out_rate);
  EXPECT_TRUE(r.Push(in_rate, channels, n, signal, format).ok());
  EXPECT_TRUE(r.Finish().ok());
  return r.received().samples;
}

double Rms(const std::vector<float>& x, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += double{x[i]} * x[i];
  return std::sqrt(sum / static_cast<double>(end - begin));
}

// The length promise of the header: within a sample of n * out / in, and at
// least max(1, floor(n * out / in)).
void ExpectProportionalLength(size_t got, int64_t n, int in_rate,
                              int out_rate) {
  const double exact = static_cast<double>(n) * out_rate / in_rate;
  const int64_t minimum = std::max<int64_t>(1, n * out_rate / in_rate);
  EXPECT_GE(static_cast<int64_t>(got), minimum)
      << n << " samples at " << in_rate << " Hz -> " << out_rate << " Hz";
  EXPECT_LE(std::abs(static_cast<double>(got) - exact), 1.0)
      << n << " samples at " << in_rate << " Hz -> " << out_rate << " Hz";
}

// --- Rates.

class RatePairTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(RatePairTest, OneSecondComesOutAtItsLengthAndLevel) {
  const auto [in_rate, out_rate] = GetParam();
  // 440 Hz lies below every Nyquist frequency here.
  const std::vector<float> out =
      ResampleAll(in_rate, out_rate, 1, in_rate, Sine(440, in_rate));
  ExpectProportionalLength(out.size(), in_rate, in_rate, out_rate);
  // Away from the edges, a 0.5 sine keeps its RMS of 0.5 / sqrt(2).
  ASSERT_GT(out.size(), 200u);
  EXPECT_NEAR(Rms(out, out.size() / 10, out.size() * 9 / 10),
              0.5 / std::numbers::sqrt2, 0.01);
}

TEST_P(RatePairTest, ShortInputsAreFlushedToTheirProportionalLength) {
  const auto [in_rate, out_rate] = GetParam();
  for (int64_t n : {1, 2, 3, 7, 50, 333, 1000, 4099}) {
    const std::vector<float> out =
        ResampleAll(in_rate, out_rate, 1, n, Sine(440, in_rate));
    ExpectProportionalLength(out.size(), n, in_rate, out_rate);
  }
}

INSTANTIATE_TEST_SUITE_P(UpDownAndOdd, RatePairTest,
                         ::testing::Values(std::make_tuple(48000, 16000),
                                           std::make_tuple(16000, 48000),
                                           std::make_tuple(44100, 16000),
                                           std::make_tuple(11025, 16000),
                                           std::make_tuple(16000, 11025),
                                           std::make_tuple(192000, 16000),
                                           std::make_tuple(22050, 192000),
                                           std::make_tuple(16000, 16000)),
                         [](const auto& info) {
                           return absl::StrCat(std::get<0>(info.param), "_to_",
                                               std::get<1>(info.param));
                         });

TEST(MonoResampler, SameRateMonoPassesSamplesThrough) {
  const Signal signal = Sine(1000, 16000);
  const std::vector<float> out = ResampleAll(16000, 16000, 1, 5000, signal);
  ASSERT_EQ(out.size(), 5000u);
  for (int64_t i = 0; i < 5000; ++i) {
    ASSERT_FLOAT_EQ(out[i], signal(0, i)) << "sample " << i;
  }
}

// --- Downmix.

TEST(MonoResampler, StereoBecomesTheMeanOfItsChannels) {
  const std::vector<float> out =
      ResampleAll(16000, 16000, 2, 3000, Constant({0.6f, 0.2f}));
  ASSERT_EQ(out.size(), 3000u);
  for (float x : out) ASSERT_NEAR(x, 0.4f, 1e-6f);
}

TEST(MonoResampler, EveryChannelOfFivePointOneCountsTheSame) {
  // Centre and LFE weigh what the others do: a plain mean, not a mix.
  const std::vector<float> out = ResampleAll(
      48000, 48000, 6, 2000, Constant({0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}));
  ASSERT_EQ(out.size(), 2000u);
  for (float x : out) ASSERT_NEAR(x, 0.35f, 1e-6f);
}

TEST(MonoResampler, OppositeChannelsCancel) {
  const Signal sine = Sine(440, 44100);
  const std::vector<float> out =
      ResampleAll(44100, 16000, 2, 44100, [&](int channel, int64_t i) {
        return channel == 0 ? sine(0, i) : -sine(0, i);
      });
  ExpectProportionalLength(out.size(), 44100, 44100, 16000);
  for (float x : out) ASSERT_NEAR(x, 0.0f, 1e-6f);
}

TEST(MonoResampler, DownmixAndResampleTogether) {
  const std::vector<float> out =
      ResampleAll(44100, 16000, 2, 44100, Constant({0.6f, 0.2f}));
  ExpectProportionalLength(out.size(), 44100, 44100, 16000);
  // A constant passes the resampler's low-pass, away from the edges.
  for (size_t i = 100; i + 100 < out.size(); ++i) {
    ASSERT_NEAR(out[i], 0.4f, 1e-3f) << "sample " << i;
  }
}

TEST(MonoResampler, InterleavedAndIntegerFormatsGiveTheSameFloats) {
  const Signal signal = Sine(440, 16000);
  const std::vector<float> planar =
      ResampleAll(16000, 16000, 2, 4000, signal, AV_SAMPLE_FMT_FLTP);
  const std::vector<float> interleaved =
      ResampleAll(16000, 16000, 2, 4000, signal, AV_SAMPLE_FMT_FLT);
  const std::vector<float> s16 =
      ResampleAll(16000, 16000, 2, 4000, signal, AV_SAMPLE_FMT_S16);
  ASSERT_EQ(planar.size(), 4000u);
  ASSERT_EQ(interleaved.size(), 4000u);
  ASSERT_EQ(s16.size(), 4000u);
  for (size_t i = 0; i < planar.size(); ++i) {
    ASSERT_FLOAT_EQ(interleaved[i], planar[i]) << "sample " << i;
    // 16-bit quantization (and FFmpeg's scale of 1/32768).
    ASSERT_NEAR(s16[i], planar[i], 1e-4f) << "sample " << i;
  }
}

// --- Stretches, chunks, errors.

TEST(MonoResampler, ARateChangeMidStreamKeepsEachStretchsLength) {
  // A chained Ogg: 0.5 s at 44.1 kHz, then 0.25 s at 48 kHz.
  Resampling r(16000);
  ASSERT_TRUE(r.Push(44100, 2, 22050, Sine(440, 44100)).ok());
  ASSERT_TRUE(r.Push(48000, 1, 12000, Sine(440, 48000)).ok());
  ASSERT_TRUE(r.Finish().ok());
  EXPECT_LE(std::abs(static_cast<double>(r.received().samples.size()) -
                     (8000 + 4000)),
            2.0);
}

TEST(MonoResampler, OnlyTheFirstSamplesOfAFrameAreUsedWhenToldSo) {
  Resampling r(16000);
  FramePtr frame =
      MakeFrame(AV_SAMPLE_FMT_FLTP, 16000, 1, 0, 1000, Sine(440, 16000));
  ASSERT_TRUE(r.resampler().Push(*frame, 300).ok());
  ASSERT_TRUE(r.Finish().ok());
  EXPECT_EQ(r.received().samples.size(), 300u);
}

TEST(MonoResampler, ChunksAreFullExceptTheLast) {
  Resampling r(16000, /*max_chunk_samples=*/100);
  ASSERT_TRUE(r.Push(48000, 1, 48000, Sine(440, 48000)).ok());
  ASSERT_TRUE(r.Finish().ok());
  const std::vector<size_t>& sizes = r.received().chunk_sizes;
  ASSERT_FALSE(sizes.empty());
  for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], 100u);
  EXPECT_GE(sizes.back(), 1u);
  EXPECT_LE(sizes.back(), 100u);
  // The same samples as in one chunk.
  EXPECT_EQ(r.received().samples,
            ResampleAll(48000, 16000, 1, 48000, Sine(440, 48000)));
}

TEST(MonoResampler, TheSinksErrorIsReturnedUnchanged) {
  Resampling r(16000, /*max_chunk_samples=*/100);
  const absl::Status stop = absl::CancelledError("the client went away");
  r.set_sink_status(stop);
  absl::Status status = r.Push(16000, 1, 4000, Sine(440, 16000));
  if (status.ok()) status = r.Finish();
  EXPECT_EQ(status, stop);
  // Decoding stopped at the first refused chunk.
  EXPECT_EQ(r.received().chunk_sizes.size(), 1u);
}

TEST(MonoResampler, NothingInNothingOut) {
  Resampling r(16000);
  ASSERT_TRUE(r.Finish().ok());
  EXPECT_TRUE(r.received().samples.empty());
}

}  // namespace
}  // namespace audiotag::audio_internal
