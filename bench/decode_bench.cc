// Decode throughput: audiotag's in-memory decoder against the ffmpeg CLI on
// the same file, in the same run.
//
//   audiotag_decode_bench [repetitions] [seconds]
//
// Makes a stereo 44.1 kHz MP3 (default 180 s) with the ffmpeg CLI, then times
// (a) DecodeAudio to mono 16 kHz and (b) `ffmpeg -threads 1` doing the same
// decode, downmix and resample to /dev/null. Prints best and median wall
// seconds of each and the ratio ffmpeg / audiotag (above 1: audiotag faster).
// Then prints what one short upload costs (1 s clips, as an online caller
// sends them): mean milliseconds per DecodeAudio call over 500 calls, next
// to the audio's own duration.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/audio/decoder.h"
#include "tests/testutil/audio_files.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

struct Summary {
  double best;
  double median;
};

Summary Summarize(std::vector<double> times) {
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  const double median =
      n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  return {times.front(), median};
}

// Mean wall milliseconds of one DecodeAudio call on `bytes` to 16 kHz.
absl::StatusOr<double> MillisPerDecode(const std::string& bytes, int calls) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) {
    absl::StatusOr<audiotag::AudioInfo> info = audiotag::DecodeAudio(
        bytes, {16000}, audiotag::DecoderOptions(),
        [](int, absl::Span<const float>) { return absl::OkStatus(); });
    if (!info.ok()) return info.status();
  }
  return Seconds(start) * 1e3 / calls;
}

int ShortClips() {
  constexpr int kCalls = 500;
  for (const char* format : {"wav", "flac", "mp3"}) {
    audiotag::testing::AudioSpec spec;
    spec.format = format;
    spec.seconds = 1.0;
    absl::StatusOr<std::string> bytes = audiotag::testing::MakeAudioFile(spec);
    absl::StatusOr<double> ms =
        bytes.ok() ? MillisPerDecode(*bytes, kCalls) : bytes.status();
    if (!ms.ok()) {
      std::fprintf(stderr, "%s\n", ms.status().ToString().c_str());
      return 1;
    }
    std::printf("1 s 16 kHz mono %-4s  : %.3f ms per upload (mean of %d)\n",
                format, *ms, kCalls);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int repetitions = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 180.0;

  audiotag::testing::AudioSpec spec;
  spec.format = "mp3";
  spec.sample_rate = 44100;
  spec.channels = 2;
  spec.seconds = seconds;
  spec.frequencies = {440.0, 660.0};
  absl::StatusOr<std::string> bytes = audiotag::testing::MakeAudioFile(spec);
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s\n", bytes.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<std::string> path =
      audiotag::testing::WriteTempFile("decode_bench.mp3", *bytes);
  if (!path.ok()) {
    std::fprintf(stderr, "%s\n", path.status().ToString().c_str());
    return 1;
  }
  const std::string command =
      absl::StrCat("ffmpeg -nostdin -v quiet -threads 1 -i '", *path,
                   "' -ac 1 -ar 16000 -f f32le -y /dev/null");
  std::printf("input: %.0f s stereo 44.1 kHz mp3, %zu bytes (%s)\n", seconds,
              bytes->size(), path->c_str());
  std::printf("ffmpeg: %s\n", command.c_str());

  std::vector<double> ours, theirs;
  int64_t samples = 0;
  for (int i = 0; i < repetitions; ++i) {
    // Alternate so that drifting machine load hits both alike.
    auto start = std::chrono::steady_clock::now();
    samples = 0;
    absl::StatusOr<audiotag::AudioInfo> info =
        audiotag::DecodeAudio(*bytes, {16000}, audiotag::DecoderOptions(),
                              [&samples](int, absl::Span<const float> chunk) {
                                samples += static_cast<int64_t>(chunk.size());
                                return absl::OkStatus();
                              });
    ours.push_back(Seconds(start));
    if (!info.ok()) {
      std::fprintf(stderr, "%s\n", info.status().ToString().c_str());
      return 1;
    }
    start = std::chrono::steady_clock::now();
    if (std::system(command.c_str()) != 0) {
      std::fprintf(stderr, "ffmpeg failed\n");
      return 1;
    }
    theirs.push_back(Seconds(start));
  }
  std::remove(path->c_str());

  const Summary a = Summarize(ours), b = Summarize(theirs);
  std::printf("repetitions: %d, audiotag output: %lld samples at 16 kHz\n",
              repetitions, static_cast<long long>(samples));
  std::printf("audiotag DecodeAudio : best %.3f s  median %.3f s\n", a.best,
              a.median);
  std::printf("ffmpeg CLI           : best %.3f s  median %.3f s\n", b.best,
              b.median);
  std::printf("ratio ffmpeg/audiotag: best %.2f  median %.2f\n",
              b.best / a.best, b.median / a.median);
  return ShortClips();
}
