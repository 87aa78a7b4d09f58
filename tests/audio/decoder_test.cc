#include "src/audio/decoder.h"

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/audio_files.h"

namespace audiotag {
namespace {

using ::audiotag::testing::AudioSpec;
using ::audiotag::testing::MakeAudioFile;
using ::testing::HasSubstr;

constexpr int kOutputRates[] = {16000, 32000, 48000};
constexpr int kAllSourceRates[] = {8000,  11025, 16000, 22050,
                                   32000, 44100, 48000, 96000};

std::string MustMake(const AudioSpec& spec) {
  absl::StatusOr<std::string> bytes = MakeAudioFile(spec);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

// Amplitude of the `frequency` component of `x[begin, end)`, measured with a
// Hann-windowed single-bin DFT (Goertzel) at exactly that frequency.
double ToneAmplitude(const std::vector<float>& x, size_t begin, size_t end,
                     int rate, double frequency) {
  const double w = 2 * std::numbers::pi * frequency / rate;
  const size_t n = end - begin;
  double re = 0, im = 0, window_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double hann = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / n);
    re += hann * x[begin + i] * std::cos(w * i);
    im -= hann * x[begin + i] * std::sin(w * i);
    window_sum += hann;
  }
  return 2 * std::hypot(re, im) / window_sum;
}

double Rms(const std::vector<float>& x, size_t begin, size_t end) {
  double sum = 0;
  for (size_t i = begin; i < end; ++i) sum += double{x[i]} * x[i];
  return std::sqrt(sum / (end - begin));
}

// Frequency from the rising zero crossings in x[begin, end).
double ZeroCrossingFrequency(const std::vector<float>& x, size_t begin,
                             size_t end, int rate) {
  double first = -1, last = -1;
  int crossings = 0;
  for (size_t i = begin + 1; i < end; ++i) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      const double t = i - 1 + x[i - 1] / (x[i - 1] - x[i]);
      if (first < 0) first = t;
      last = t;
      ++crossings;
    }
  }
  if (crossings < 2) return 0;
  return (crossings - 1) * rate / (last - first);
}

struct Tolerance {
  double seconds;    // decoded duration vs. the spec
  double amplitude;  // relative error of the tone's amplitude
};

Tolerance ToleranceFor(const std::string& format) {
  if (format == "wav" || format == "flac") return {0.001, 0.01};
  return {0.1, 0.12};
}

// Decodes `spec`'s file at kOutputRates and checks the duration, the sample
// counts, and that a single sine survives with its frequency and amplitude
// (`expected_amplitude`, or the spec's when negative).
void ExpectSineSurvives(const AudioSpec& spec, double expected_amplitude = -1) {
  if (expected_amplitude < 0) expected_amplitude = spec.amplitude;
  SCOPED_TRACE(absl::StrCat(spec.format, " ", spec.sample_rate, " Hz ",
                            spec.channels, " ch"));
  const std::string bytes = MustMake(spec);
  AudioInfo info;
  absl::StatusOr<std::vector<std::vector<float>>> out =
      DecodeAudioToVectors(bytes, kOutputRates, DecoderOptions(), &info);
  ASSERT_TRUE(out.ok()) << out.status();
  const Tolerance tolerance = ToleranceFor(spec.format);
  EXPECT_NEAR(info.duration_seconds, spec.seconds, tolerance.seconds);
  EXPECT_EQ(info.channels, spec.channels);
  EXPECT_EQ(info.size_bytes, static_cast<int64_t>(bytes.size()));
  const double frequency = spec.frequencies[0];
  for (size_t r = 0; r < std::size(kOutputRates); ++r) {
    const int rate = kOutputRates[r];
    const std::vector<float>& x = (*out)[r];
    EXPECT_NEAR(static_cast<double>(x.size()), info.duration_seconds * rate,
                0.002 * rate + 2)
        << "rate " << rate;
    // Leave out the edges, where codecs fade in and resamplers ring.
    const size_t begin = x.size() / 5, end = x.size() - x.size() / 5;
    ASSERT_GT(end, begin + rate / 10) << "rate " << rate;
    EXPECT_NEAR(ToneAmplitude(x, begin, end, rate, frequency),
                expected_amplitude, expected_amplitude * tolerance.amplitude)
        << "rate " << rate;
    EXPECT_NEAR(Rms(x, begin, end), expected_amplitude / std::sqrt(2.0),
                expected_amplitude * tolerance.amplitude)
        << "rate " << rate;
    EXPECT_NEAR(ZeroCrossingFrequency(x, begin, end, rate), frequency,
                frequency * 0.01)
        << "rate " << rate;
  }
}

AudioSpec Sine(const std::string& format, int rate, int channels,
               double seconds = 1.0) {
  AudioSpec spec;
  spec.format = format;
  spec.sample_rate = rate;
  spec.channels = channels;
  spec.seconds = seconds;
  spec.frequencies = {440.0};
  spec.amplitude = 0.5;
  return spec;
}

TEST(Decoder, DecodesWavAtEveryRate) {
  for (int rate : kAllSourceRates) ExpectSineSurvives(Sine("wav", rate, 1));
}

TEST(Decoder, DecodesFlacAtEveryRate) {
  for (int rate : kAllSourceRates) ExpectSineSurvives(Sine("flac", rate, 2));
}

TEST(Decoder, DecodesMp3AtEveryRateItSupports) {
  // MP3 has no 96 kHz mode.
  for (int rate : {8000, 11025, 16000, 22050, 32000, 44100, 48000}) {
    ExpectSineSurvives(Sine("mp3", rate, rate % 2 == 0 ? 2 : 1));
  }
}

TEST(Decoder, DecodesOggVorbis) {
  for (int rate : {8000, 22050, 44100, 48000, 96000}) {
    ExpectSineSurvives(Sine("ogg", rate, 2));
  }
}

TEST(Decoder, DecodesOpus) {
  // The encoder resamples 44.1 kHz to one of Opus's own rates.
  for (int rate : {8000, 16000, 44100, 48000}) {
    ExpectSineSurvives(Sine("opus", rate, 2));
  }
}

TEST(Decoder, DecodesM4aAac) {
  for (int rate : {8000, 16000, 22050, 44100, 48000, 96000}) {
    ExpectSineSurvives(Sine("m4a", rate, 2));
  }
}

TEST(Decoder, DecodesLossyMultichannel) {
  // AAC band-limits the LFE channel of 5.1 to ~120 Hz, so its 440 Hz copy
  // of the tone is gone and the mean holds 5 of the 6.
  ExpectSineSurvives(Sine("m4a", 48000, 6), 0.5 * 5 / 6);
  ExpectSineSurvives(Sine("ogg", 44100, 8));
  ExpectSineSurvives(Sine("opus", 48000, 6));
}

TEST(Decoder, ReportsWhatItFound) {
  const std::string bytes = MustMake(Sine("flac", 22050, 2, 0.5));
  AudioInfo info;
  ASSERT_TRUE(DecodeAudioToVectors(bytes, {16000}, {}, &info).ok());
  EXPECT_EQ(info.container, "flac");
  EXPECT_EQ(info.codec, "flac");
  EXPECT_EQ(info.sample_rate, 22050);
  EXPECT_EQ(info.channels, 2);
  EXPECT_NEAR(info.duration_seconds, 0.5, 1e-3);
}

// Each channel has its own tone; the mono mix must hold each at 1/N of its
// amplitude.
void ExpectMeanOfChannels(const std::string& format, int channels) {
  SCOPED_TRACE(absl::StrCat(format, " ", channels, " ch"));
  AudioSpec spec = Sine(format, 48000, channels, 1.0);
  spec.frequencies = {300, 500, 700, 900, 1100, 1300, 1500, 1700};
  spec.frequencies.resize(channels);
  spec.amplitude = 0.8;
  const std::string bytes = MustMake(spec);
  absl::StatusOr<std::vector<std::vector<float>>> out =
      DecodeAudioToVectors(bytes, {16000}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  const std::vector<float>& x = (*out)[0];
  const size_t begin = x.size() / 5, end = x.size() - x.size() / 5;
  for (double f : spec.frequencies) {
    EXPECT_NEAR(ToneAmplitude(x, begin, end, 16000, f),
                spec.amplitude / channels, 0.01 * spec.amplitude / channels)
        << f << " Hz";
  }
  // Uncorrelated tones: the powers add.
  EXPECT_NEAR(Rms(x, begin, end),
              spec.amplitude / channels * std::sqrt(channels / 2.0),
              0.01 * spec.amplitude);
}

TEST(Decoder, DownmixesStereoToMeanOfChannels) {
  ExpectMeanOfChannels("wav", 2);
  ExpectMeanOfChannels("flac", 2);
}

TEST(Decoder, DownmixesSixAndEightChannelsToMean) {
  ExpectMeanOfChannels("flac", 6);
  ExpectMeanOfChannels("wav", 8);
  ExpectMeanOfChannels("flac", 8);
}

TEST(Decoder, ChunksNeverExceedMaxChunkSamples) {
  const std::string bytes = MustMake(Sine("mp3", 44100, 2, 2.0));
  DecoderOptions options;
  options.max_chunk_samples = 1000;
  std::vector<int64_t> totals(3, 0);
  int chunks = 0;
  absl::StatusOr<AudioInfo> info =
      DecodeAudio(bytes, kOutputRates, options,
                  [&](int rate_index, absl::Span<const float> samples) {
                    EXPECT_LE(samples.size(), 1000u);
                    EXPECT_FALSE(samples.empty());
                    totals[rate_index] += static_cast<int64_t>(samples.size());
                    ++chunks;
                    return absl::OkStatus();
                  });
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GT(chunks, 3 * 16);
  absl::StatusOr<std::vector<std::vector<float>>> whole =
      DecodeAudioToVectors(bytes, kOutputRates, {});
  ASSERT_TRUE(whole.ok());
  for (size_t r = 0; r < 3; ++r) {
    EXPECT_EQ(totals[r], static_cast<int64_t>((*whole)[r].size()));
  }
}

TEST(Decoder, DecodesWithNoOutputRates) {
  const std::string bytes = MustMake(Sine("wav", 16000, 1, 0.25));
  absl::StatusOr<std::vector<std::vector<float>>> out =
      DecodeAudioToVectors(bytes, {}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->empty());
}

TEST(Decoder, RejectsBadOutputRates) {
  const std::string bytes = MustMake(Sine("wav", 16000, 1, 0.25));
  for (int rate : {0, -16000, 384001}) {
    absl::StatusOr<std::vector<std::vector<float>>> out =
        DecodeAudioToVectors(bytes, {16000, rate}, {});
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << rate;
  }
  EXPECT_TRUE(DecodeAudioToVectors(bytes, {1, 384000}, {}).ok());
}

TEST(Decoder, RejectsEmptyUpload) {
  auto out = DecodeAudioToVectors("", {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("empty"));
}

TEST(Decoder, RejectsRandomBytes) {
  std::mt19937 rng(42);
  for (size_t size : {1, 7, 100, 4096, 1 << 20}) {
    std::string bytes(size, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto out = DecodeAudioToVectors(bytes, {16000}, {});
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
        << size << ": " << out.status();
  }
}

TEST(Decoder, RejectsTextFile) {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    absl::StrAppend(&text, "line ", i, ": this is not audio at all.\n");
  }
  auto out = DecodeAudioToVectors(text, {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Decoder, RefusesPlaylistsThatNameOtherFiles) {
  const std::string m3u8 =
      "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n"
      "file:///etc/passwd\n#EXT-X-ENDLIST\n";
  auto out = DecodeAudioToVectors(m3u8, {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
      << out.status();
}

TEST(Decoder, SurvivesCorruptedAndTruncatedFiles) {
  std::mt19937 rng(7);
  for (const char* format : {"wav", "flac", "mp3", "ogg", "opus", "m4a"}) {
    const std::string good = MustMake(Sine(format, 22050, 2, 1.0));
    for (int trial = 0; trial < 20; ++trial) {
      std::string bad = good.substr(0, rng() % good.size() + 1);
      for (int flips = 0; flips < 10; ++flips) {
        bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
      }
      auto out = DecodeAudioToVectors(bad, {16000}, {});
      EXPECT_TRUE(out.ok() ||
                  out.status().code() == absl::StatusCode::kInvalidArgument)
          << format << " trial " << trial << ": " << out.status();
    }
  }
}

TEST(Decoder, DecodesThePresentPartOfATruncatedMp3) {
  const std::string bytes = MustMake(Sine("mp3", 44100, 2, 4.0));
  AudioInfo info;
  auto out = DecodeAudioToVectors(bytes.substr(0, bytes.size() / 2), {16000},
                                  {}, &info);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(info.duration_seconds, 2.0, 0.15);
  EXPECT_NEAR(static_cast<double>((*out)[0].size()), 2.0 * 16000, 0.15 * 16000);
}

TEST(Decoder, RejectsAnMp3TruncatedBeforeItsFirstFrame) {
  const std::string bytes = MustMake(Sine("mp3", 44100, 2, 1.0));
  for (size_t size : {4, 64, 200}) {
    auto out = DecodeAudioToVectors(bytes.substr(0, size), {16000}, {});
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
        << size << ": " << out.status();
  }
}

void PutLe32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}
void PutLe16(std::string& s, size_t at, uint16_t v) {
  for (int i = 0; i < 2; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

// A canonical 44-byte PCM WAV header followed by `data`.
std::string HandMadeWav(int channels, int rate, const std::string& data,
                        uint32_t claimed_data_bytes) {
  std::string wav(44, '\0');
  wav.replace(0, 4, "RIFF");
  PutLe32(wav, 4, 36 + claimed_data_bytes);
  wav.replace(8, 8, "WAVEfmt ");
  PutLe32(wav, 16, 16);
  PutLe16(wav, 20, 1);  // PCM
  PutLe16(wav, 22, static_cast<uint16_t>(channels));
  PutLe32(wav, 24, static_cast<uint32_t>(rate));
  PutLe32(wav, 28, static_cast<uint32_t>(rate * channels * 2));
  PutLe16(wav, 32, static_cast<uint16_t>(channels * 2));
  PutLe16(wav, 34, 16);
  wav.replace(36, 4, "data");
  PutLe32(wav, 40, claimed_data_bytes);
  return wav + data;
}

std::string SineS16(int rate, int channels, double seconds) {
  std::string data;
  const int n = static_cast<int>(rate * seconds);
  for (int i = 0; i < n; ++i) {
    const auto v = static_cast<int16_t>(
        16000 * std::sin(2 * std::numbers::pi * 440.0 * i / rate));
    for (int c = 0; c < channels; ++c) {
      data.push_back(static_cast<char>(v & 0xff));
      data.push_back(static_cast<char>((v >> 8) & 0xff));
    }
  }
  return data;
}

TEST(Decoder, HandMadeWavHeaderIsReadable) {
  const std::string data = SineS16(16000, 2, 1.0);
  AudioInfo info;
  auto out = DecodeAudioToVectors(HandMadeWav(2, 16000, data, data.size()),
                                  {16000}, {}, &info);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].size(), 16000u);
  EXPECT_NEAR(ToneAmplitude((*out)[0], 0, 16000, 16000, 440), 16000 / 32768.0,
              0.01);
}

TEST(Decoder, WavClaimingHoursReturnsTheRealDuration) {
  const std::string data = SineS16(16000, 1, 3.0);
  const std::string wav = HandMadeWav(1, 16000, data, 0xFFFFFF00u);
  const auto start = std::chrono::steady_clock::now();
  AudioInfo info;
  auto out = DecodeAudioToVectors(wav, {16000}, {}, &info);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NEAR(info.duration_seconds, 3.0, 1e-3);
  EXPECT_EQ((*out)[0].size(), 48000u);
  EXPECT_LT(elapsed, 5.0);
}

TEST(Decoder, RejectsZeroChannelWav) {
  auto out = DecodeAudioToVectors(
      HandMadeWav(0, 16000, std::string(32000, '\0'), 32000), {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
      << out.status();
}

TEST(Decoder, RejectsZeroRateWav) {
  auto out = DecodeAudioToVectors(
      HandMadeWav(1, 0, std::string(32000, '\0'), 32000), {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument)
      << out.status();
}

TEST(Decoder, RejectsAbsurdChannelCountAndRate) {
  auto many = DecodeAudioToVectors(
      HandMadeWav(200, 16000, std::string(64000, '\0'), 64000), {16000}, {});
  EXPECT_EQ(many.status().code(), absl::StatusCode::kInvalidArgument)
      << many.status();
  auto fast = DecodeAudioToVectors(
      HandMadeWav(1, 2000000, std::string(64000, '\0'), 64000), {16000}, {});
  EXPECT_EQ(fast.status().code(), absl::StatusCode::kInvalidArgument)
      << fast.status();
}

// Peak resident memory of this process so far, in bytes.
int64_t PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

// The decoder fuzzer's find, rebuilt by hand: a WAV header followed by a
// LIST chunk that claims almost 4 GB, holding an INFO entry that claims
// 2 GB. libavformat allocates (and zeroes) an INFO entry's claimed size
// before reading it; the allocation cap makes that fail instead.
TEST(Decoder, HugeClaimedInfoChunkDoesNotAllocateIt) {
  const std::string wav = HandMadeWav(1, 16000, "", 0);
  std::string list(20, '\0');
  list.replace(0, 4, "LIST");
  PutLe32(list, 4, 0xfffffff0u);
  list.replace(8, 8, "INFOISFT");
  PutLe32(list, 16, 0x7ffffff0u);
  // RIFF header and fmt chunk, then the LIST chunk instead of the data.
  const std::string bytes = wav.substr(0, 36) + list + std::string(64, 'x');
  const int64_t before = PeakRssBytes();
  auto out = DecodeAudioToVectors(bytes, {16000}, {});
  EXPECT_FALSE(out.ok());
  EXPECT_LT(PeakRssBytes() - before, int64_t{512} << 20)
      << "peak RSS grew from " << before << " to " << PeakRssBytes();
}

TEST(Decoder, RejectsUploadOverTheByteLimit) {
  const std::string bytes = MustMake(Sine("wav", 16000, 1, 0.5));
  DecoderOptions options;
  options.max_input_bytes = static_cast<int64_t>(bytes.size()) - 1;
  int calls = 0;
  auto info =
      DecodeAudio(bytes, {16000}, options, [&](int, absl::Span<const float>) {
        ++calls;
        return absl::OkStatus();
      });
  EXPECT_EQ(info.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(calls, 0);
  options.max_input_bytes = static_cast<int64_t>(bytes.size());
  EXPECT_TRUE(DecodeAudioToVectors(bytes, {16000}, options).ok());
}

TEST(Decoder, RejectsAudioOverTheDurationLimit) {
  const std::string bytes = MustMake(Sine("flac", 16000, 1, 3.0));
  DecoderOptions options;
  options.max_duration_seconds = 1.0;
  auto out = DecodeAudioToVectors(bytes, {16000}, options);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kResourceExhausted);
  options.max_duration_seconds = 3.5;
  EXPECT_TRUE(DecodeAudioToVectors(bytes, {16000}, options).ok());
}

TEST(Decoder, DurationLimitCountsDecodedAudioNotTheHeader) {
  // The header claims hours; only 2 s are there, under a 10 s limit.
  const std::string data = SineS16(16000, 1, 2.0);
  DecoderOptions options;
  options.max_duration_seconds = 10;
  auto out = DecodeAudioToVectors(HandMadeWav(1, 16000, data, 0xFFFFFF00u),
                                  {16000}, options);
  EXPECT_TRUE(out.ok()) << out.status();
}

TEST(Decoder, SinkErrorStopsDecodingAndIsReturned) {
  const std::string bytes = MustMake(Sine("flac", 48000, 2, 3.0));
  DecoderOptions options;
  options.max_chunk_samples = 4800;
  int calls = 0;
  auto info = DecodeAudio(bytes, {16000, 48000}, options,
                          [&](int, absl::Span<const float>) {
                            ++calls;
                            return absl::CancelledError("client went away");
                          });
  EXPECT_EQ(info.status(), absl::CancelledError("client went away"));
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace audiotag
