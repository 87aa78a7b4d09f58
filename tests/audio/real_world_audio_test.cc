// The kinds of real-world audio that used to decode wrongly (issue 13):
// audio too short to survive resampling, stream parameters unknown after
// probing, finite samples far out of range, and encoder priming and padding.
// Every input is made here, with the ffmpeg CLI or byte by byte.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <numbers>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/audio/decoder.h"
#include "tests/testutil/server_process.h"

namespace audiotag {
namespace {

using ::audiotag::testing::NewTempDir;
using ::audiotag::testing::RunCommand;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

// A canonical WAV: 16-bit PCM, or 32-bit IEEE float when `is_float`.
std::string Wav(int rate, int channels, bool is_float, const std::string& pcm) {
  const int bits = is_float ? 32 : 16;
  const int block = channels * bits / 8;
  const std::string fmt = Le(is_float ? 3 : 1, 2) + Le(channels, 2) +
                          Le(rate, 4) + Le(rate * block, 4) + Le(block, 2) +
                          Le(bits, 2);
  return "RIFF" + Le(4 + 8 + fmt.size() + 8 + pcm.size(), 4) + "WAVE" + "fmt " +
         Le(fmt.size(), 4) + fmt + "data" + Le(pcm.size(), 4) + pcm;
}

std::string FloatWav(int rate, const std::vector<float>& samples) {
  std::string pcm(samples.size() * sizeof(float), '\0');
  if (!samples.empty()) std::memcpy(pcm.data(), samples.data(), pcm.size());
  return Wav(rate, 1, true, pcm);
}

std::string Int16Wav(int rate, int channels, int64_t frames, double value) {
  std::string pcm;
  for (int64_t i = 0; i < frames * channels; ++i) {
    pcm += Le(static_cast<uint16_t>(static_cast<int16_t>(value * 32767)), 2);
  }
  return Wav(rate, channels, false, pcm);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `ffmpeg -nostdin -v error -y ARGS DIR/OUT` and returns DIR/OUT.
std::string Ffmpeg(const std::string& dir, const std::string& args,
                   const std::string& out) {
  const std::string path = dir + "/" + out;
  auto run = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("ffmpeg -nostdin -v error -y ", args, " '", path, "'")});
  EXPECT_TRUE(run.ok() && run->exit_code == 0)
      << args << ": " << (run.ok() ? run->err : run.status().ToString());
  return path;
}

// Mono float samples of `path` at its own rate, decoded by the ffmpeg CLI.
std::vector<float> CliDecode(const std::string& dir, const std::string& path) {
  const std::string raw =
      Ffmpeg(dir, absl::StrCat("-i '", path, "' -ac 1 -f f32le -c:a pcm_f32le"),
             "cli.raw");
  const std::string bytes = Slurp(raw);
  std::vector<float> out(bytes.size() / sizeof(float));
  if (!out.empty()) {
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  }
  return out;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// What the decoder promises for n samples at `from` Hz resampled to `to` Hz:
// at least max(1, floor(n * to / from)), and within a sample of n * to /
// from above.
void ExpectProportional(size_t got, int64_t n, int from, int to) {
  SCOPED_TRACE(absl::StrCat(n, " samples, ", from, " Hz -> ", to, " Hz"));
  EXPECT_GE(static_cast<int64_t>(got), std::max<int64_t>(1, n * to / from));
  EXPECT_LE(static_cast<int64_t>(got), CeilDiv(n * to, from) + 1);
}

// --- Kind 1: audio too short to survive resampling -------------------------

TEST(ShortAudio, AnyNonEmptyInputResamplesToItsProportionalLength) {
  const std::vector<int> rates = {8000,  16000, 22050, 32000,
                                  44100, 48000, 96000};
  for (int channels : {1, 2}) {
    for (int64_t n : {1, 2, 7, 10, 49, 50, 60, 100, 441, 1000, 44101}) {
      SCOPED_TRACE(absl::StrCat(n, " samples, ", channels, " channels"));
      AudioInfo info;
      auto out = DecodeAudioToVectors(Int16Wav(44100, channels, n, 0.5), rates,
                                      {}, &info);
      ASSERT_TRUE(out.ok()) << out.status();
      for (size_t r = 0; r < rates.size(); ++r) {
        ExpectProportional((*out)[r].size(), n, 44100, rates[r]);
      }
      EXPECT_DOUBLE_EQ(info.duration_seconds, n / 44100.0);
    }
  }
}

TEST(ShortAudio, ExtremeRatiosKeepTheProportionalLength) {
  struct Case {
    int rate;
    int64_t n;
  };
  for (const Case& c : {Case{1, 100}, Case{7, 3}, Case{768000, 1},
                        Case{768000, 47}, Case{8000, 1}}) {
    SCOPED_TRACE(absl::StrCat(c.n, " samples at ", c.rate, " Hz"));
    auto out =
        DecodeAudioToVectors(Int16Wav(c.rate, 1, c.n, 0.5), {16000, 48000}, {});
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectProportional((*out)[0].size(), c.n, c.rate, 16000);
    ExpectProportional((*out)[1].size(), c.n, c.rate, 48000);
  }
}

TEST(ShortAudio, AShortBurstKeepsItsLevel) {
  // 40 samples of DC at 44.1 kHz are ~14.5 samples at 16 kHz; with the
  // filter's tails at both ends, the middle must still carry the level.
  auto out = DecodeAudioToVectors(Int16Wav(44100, 1, 40, 0.5), {16000}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ((*out)[0].size(), 14u);
  EXPECT_NEAR((*out)[0][7], 0.5, 0.1);
}

TEST(ShortAudio, LongerAudioIsResampledAsTheFfmpegCliDoes) {
  // Reference pipelines (tools/export parity tests, the teachers' own code
  // fed by the ffmpeg CLI) resample with the CLI: only audio too short for
  // the filter is treated differently.
  const std::string dir = NewTempDir("cli-resample");
  for (int64_t n : {441, 44101, 123457}) {
    SCOPED_TRACE(absl::StrCat(n, " samples"));
    const std::string source = Ffmpeg(
        dir,
        absl::StrCat("-f lavfi -i sine=frequency=440:sample_rate=44100 -af "
                     "atrim=end_sample=",
                     n, " -c:a pcm_s16le"),
        "source.wav");
    const std::string raw =
        Ffmpeg(dir, absl::StrCat("-i '", source, "' -ar 16000 -f f32le"),
               "cli16k.raw");
    const std::string bytes = Slurp(raw);
    std::vector<float> cli(bytes.size() / sizeof(float));
    if (!cli.empty()) {
      std::memcpy(cli.data(), bytes.data(), cli.size() * sizeof(float));
    }
    auto out = DecodeAudioToVectors(Slurp(source), {16000}, {});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ((*out)[0].size(), cli.size());
    for (size_t i = 0; i < cli.size(); ++i) {
      ASSERT_NEAR((*out)[0][i], cli[i], 1e-6) << "sample " << i;
    }
  }
}

// --- Kind 2: stream parameters unknown after probing -----------------------

TEST(LateStreamParameters, TransportStreamWhoseAudioStartsAfterSixSeconds) {
  const std::string dir = NewTempDir("late-ts");
  // Video from 0 s; the audio's first packet is 6 s in, after the 5 s that
  // libavformat looks at to learn the streams' parameters.
  const std::string ts =
      Ffmpeg(dir,
             "-f lavfi -i testsrc=duration=10:size=32x32:rate=5 -itsoffset 6 "
             "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=4 "
             "-map 0:v -map 1:a -c:v mpeg2video -c:a mp2",
             "late.ts");
  const std::vector<float> cli = CliDecode(dir, ts);
  ASSERT_GT(cli.size(), 48000u * 4) << "the ffmpeg CLI decodes the audio";

  AudioInfo info;
  auto out = DecodeAudioToVectors(Slurp(ts), {48000}, {}, &info);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(info.container, "mpegts");
  EXPECT_EQ(info.sample_rate, 48000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_THAT(info.formats, ElementsAre(AudioFormat{48000, 1}));
  EXPECT_EQ((*out)[0].size(), cli.size());
  EXPECT_NEAR(info.duration_seconds, cli.size() / 48000.0, 1.0 / 48000);
}

TEST(LateStreamParameters, DeclaredStreamWithNoFrameIsRefusedSayingWhy) {
  const std::string dir = NewTempDir("late-ts-cut");
  const std::string ts =
      Ffmpeg(dir,
             "-f lavfi -i testsrc=duration=10:size=32x32:rate=5 -itsoffset 6 "
             "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=4 "
             "-map 0:v -map 1:a -c:v mpeg2video -c:a mp2",
             "late.ts");
  const std::string bytes = Slurp(ts);
  // Everything before the audio stream's first packet (PID 0x101, the
  // muxer's second stream): the program table names the stream, but none
  // of its packets arrives.
  size_t cut = 0;
  while (cut + 188 <= bytes.size()) {
    const int pid = ((static_cast<uint8_t>(bytes[cut + 1]) & 0x1f) << 8) |
                    static_cast<uint8_t>(bytes[cut + 2]);
    if (pid == 0x101) break;
    cut += 188;
  }
  ASSERT_GT(cut, 0u);
  ASSERT_LT(cut, bytes.size());
  const std::string head = bytes.substr(0, cut);
  auto out = DecodeAudioToVectors(head, {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("no audio frame"));
}

TEST(LateStreamParameters, ChainedOggReportsEveryFormatItDecoded) {
  const std::string dir = NewTempDir("chained-ogg");
  const std::string a = Ffmpeg(
      dir,
      "-f lavfi -i sine=frequency=440:sample_rate=44100:duration=1 -ac 2 "
      "-c:a libvorbis",
      "a.ogg");
  const std::string b = Ffmpeg(
      dir,
      "-f lavfi -i sine=frequency=440:sample_rate=22050:duration=2 -ac 1 "
      "-c:a libvorbis",
      "b.ogg");
  const std::string chained = Slurp(a) + Slurp(b);
  AudioInfo info;
  auto out = DecodeAudioToVectors(chained, {16000}, {}, &info);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(info.sample_rate, 44100);  // the first decoded audio
  EXPECT_EQ(info.channels, 2);
  EXPECT_THAT(info.formats,
              ElementsAre(AudioFormat{44100, 2}, AudioFormat{22050, 1}));
  // Both links, each resampled to its own proportional length.
  EXPECT_NEAR(info.duration_seconds, 3.0, 0.05);
  EXPECT_NEAR((*out)[0].size() / 16000.0, info.duration_seconds, 2.0 / 16000);
}

// --- Kind 3: finite samples far out of range -------------------------------

TEST(OutOfRangeSamples, FloatWavNear1e18IsRefusedNamingThePeak) {
  std::vector<float> samples(16000, 0.1f);
  samples[8000] = 1.2e18f;
  auto out = DecodeAudioToVectors(FloatWav(16000, samples), {16000}, {});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(),
              HasSubstr("magnitude 1.2e+18 at 0.500 s"));
}

TEST(OutOfRangeSamples, LoudButPlausibleFloatAudioIsKept) {
  // Float audio may exceed full scale (mixes with headroom, 24 dB over).
  std::vector<float> samples(16000);
  for (size_t i = 0; i < samples.size(); ++i) {
    samples[i] = 16.0f * std::sin(2 * std::numbers::pi * 440 * i / 16000.0);
  }
  auto out = DecodeAudioToVectors(FloatWav(16000, samples), {16000}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].size(), 16000u);
}

TEST(OutOfRangeSamples, TheLimitIsAnOption) {
  std::vector<float> samples(1600, 0.1f);
  samples[100] = 50.0f;
  DecoderOptions options;
  options.max_sample_magnitude = 49;
  EXPECT_EQ(DecodeAudioToVectors(FloatWav(16000, samples), {16000}, options)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  options.max_sample_magnitude = 51;
  EXPECT_TRUE(
      DecodeAudioToVectors(FloatWav(16000, samples), {16000}, options).ok());
}

// --- Kind 4: encoder priming and padding -----------------------------------

struct PaddedCase {
  std::string name;
  std::string codec_args;
  int rate;
};

// A tone burst starting at `onset` samples in a source of `length` samples.
std::string MakeBurstSource(const std::string& dir, int rate, int64_t length,
                            int64_t onset) {
  return Ffmpeg(
      dir,
      absl::StrCat("-f lavfi -i \"aevalsrc='if(gte(n,", onset,
                   "),0.5*sin(2*PI*1000*t),0)':s=", rate,
                   ":d=", length / rate + 2, "\" -af atrim=end_sample=", length,
                   " -c:a pcm_s16le"),
      "source.wav");
}

// First sample whose magnitude reaches `level`.
int64_t FirstAbove(const std::vector<float>& x, float level) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::fabs(x[i]) >= level) return static_cast<int64_t>(i);
  }
  return -1;
}

TEST(EncoderPadding, AacAndOpusInMp4MatchTheSourceLengthWithinOneSample) {
  // FFmpeg's mov muxer writes the edit list in the movie's time scale:
  // with -movie_timescale at the audio's rate it is exact; an iTunSMPB tag
  // (as iTunes writes) gives the exact count whatever the edit list says.
  const std::string itunes =
      "-movflags use_metadata_tags -metadata iTunSMPB=' 00000000 00000400 "
      "00000000 ";
  const std::vector<PaddedCase> cases = {
      {"aac.m4a", "-c:a aac -b:a 96k -movie_timescale 44100", 44100},
      {"aac.mp4", "-c:a aac -b:a 96k -movie_timescale 48000", 48000},
      {"aac-22k.m4a", "-c:a aac -b:a 64k -movie_timescale 22050", 22050},
      {"opus.mp4", "-c:a libopus -b:a 64k -movie_timescale 48000", 48000},
      {"itunes.m4a", "-c:a aac -b:a 96k " + itunes, 48000},
  };
  for (const PaddedCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = NewTempDir("priming");
    const int64_t length = c.rate + 1234;  // not a whole number of frames
    const int64_t onset = c.rate / 2;
    const std::string source = MakeBurstSource(dir, c.rate, length, onset);
    std::string args = c.codec_args;
    if (c.name == "itunes.m4a") {
      args += absl::StrCat(absl::Hex(length, absl::kZeroPad16), "'");
    }
    const std::string encoded =
        Ffmpeg(dir, absl::StrCat("-i '", source, "' ", args), c.name);
    AudioInfo info;
    auto out = DecodeAudioToVectors(Slurp(encoded), {c.rate}, {}, &info);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_NEAR(static_cast<double>((*out)[0].size()), length, 1.0);
    EXPECT_NEAR(info.duration_seconds * c.rate, length, 1.0);
    // Priming trimmed: the burst starts where it starts in the source (the
    // codec's pre-echo smears it by well under a frame of 1024 samples).
    EXPECT_NEAR(static_cast<double>(FirstAbove((*out)[0], 0.25f)), onset, 64);
  }
}

TEST(EncoderPadding, DefaultFfmpegM4aIsAsExactAsItsMillisecondEditList) {
  const std::string dir = NewTempDir("priming");
  const int64_t length = 44100 + 1234;
  const std::string source = MakeBurstSource(dir, 44100, length, 22050);
  const std::string encoded = Ffmpeg(
      dir, absl::StrCat("-i '", source, "' -c:a aac -b:a 96k"), "aac.m4a");
  auto out = DecodeAudioToVectors(Slurp(encoded), {44100}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  // Without trimming: 1024 samples of priming and up to 1023 of padding.
  EXPECT_NEAR(static_cast<double>((*out)[0].size()), length, 44100 / 2000 + 1);
}

TEST(EncoderPadding, Mp3OggAndMatroskaKeepTheirTrimming) {
  const std::vector<PaddedCase> cases = {
      {"lame.mp3", "-c:a libmp3lame -b:a 128k", 44100},
      {"vorbis.ogg", "-c:a libvorbis", 44100},
      {"opus.ogg", "-c:a libopus", 48000},
      {"opus.mka", "-c:a libopus", 48000},
  };
  for (const PaddedCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string dir = NewTempDir("priming");
    const int64_t length = c.rate + 1234;
    const std::string source = MakeBurstSource(dir, c.rate, length, c.rate / 2);
    const std::string encoded =
        Ffmpeg(dir, absl::StrCat("-i '", source, "' ", c.codec_args), c.name);
    AudioInfo info;
    auto out = DecodeAudioToVectors(Slurp(encoded), {c.rate}, {}, &info);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_NEAR(static_cast<double>((*out)[0].size()), length, 1.0);
    EXPECT_NEAR(static_cast<double>(FirstAbove((*out)[0], 0.25f)), c.rate / 2,
                64);
  }
}

}  // namespace
}  // namespace audiotag
