#include "tests/testutil/audio_files.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/common/status_macros.h"

namespace audiotag::testing {
namespace {

struct Codec {
  const char* extension;
  const char* args;  // encoder arguments for the ffmpeg CLI
};

constexpr Codec kCodecs[] = {
    {"wav", "-c:a pcm_s16le"},  {"flac", "-c:a flac"},
    {"mp3", "-c:a libmp3lame"}, {"ogg", "-c:a libvorbis"},
    {"opus", "-c:a libopus"},   {"m4a", "-c:a aac"},
};

// FFmpeg's layout name for a channel count, so that encoders that map
// channels (AAC, Opus, Vorbis) accept the stream.
std::string LayoutName(int channels) {
  switch (channels) {
    case 1:
      return "mono";
    case 2:
      return "stereo";
    case 3:
      return "2.1";
    case 4:
      return "quad";
    case 5:
      return "5.0";
    case 6:
      return "5.1";
    case 7:
      return "6.1";
    case 8:
      return "7.1";
    default:
      return absl::StrCat(channels, "c");
  }
}

absl::StatusOr<std::string> TempDir() {
  static std::mutex mu;
  static std::string dir;
  std::lock_guard<std::mutex> lock(mu);
  if (!dir.empty()) return dir;
  if (const char* env = getenv("TEST_TMPDIR"); env != nullptr && *env) {
    dir = env;
    return dir;
  }
  char pattern[] = "/tmp/audiotag_test_XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    return absl::InternalError("mkdtemp failed for /tmp/audiotag_test_XXXXXX");
  }
  dir = pattern;
  return dir;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string FilterGraph(const AudioSpec& spec) {
  std::vector<std::string> parts;
  std::string inputs;
  // The sine source's amplitude is 1/8 of full scale.
  const double gain = spec.amplitude * 8.0;
  for (int c = 0; c < spec.channels; ++c) {
    const double frequency =
        spec.frequencies[static_cast<size_t>(c) % spec.frequencies.size()];
    const std::string label = spec.channels == 1 ? "out" : absl::StrCat("c", c);
    parts.push_back(absl::StrCat("sine=frequency=", frequency,
                                 ":sample_rate=", spec.sample_rate,
                                 ":duration=", spec.seconds, ",volume=", gain,
                                 ":precision=double[", label, "]"));
    absl::StrAppend(&inputs, "[", label, "]");
  }
  if (spec.channels > 1) {
    parts.push_back(absl::StrCat(inputs, "join=inputs=", spec.channels,
                                 ":channel_layout=", LayoutName(spec.channels),
                                 "[out]"));
  }
  return absl::StrJoin(parts, ";");
}

}  // namespace

absl::StatusOr<std::string> MakeAudioFile(const AudioSpec& spec) {
  const Codec* codec = nullptr;
  for (const Codec& c : kCodecs) {
    if (spec.format == c.extension) codec = &c;
  }
  if (codec == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown test audio format ", spec.format));
  }
  if (spec.channels < 1 || spec.frequencies.empty() || spec.seconds <= 0) {
    return absl::InvalidArgumentError("bad AudioSpec");
  }
  static std::atomic<int> counter{0};
  ASSIGN_OR_RETURN(std::string dir, TempDir());
  const std::string path =
      absl::StrCat(dir, "/made_", getpid(), "_", counter++, ".", spec.format);
  const std::string command = absl::StrCat(
      "ffmpeg -nostdin -v error -y -filter_complex '", FilterGraph(spec),
      "' -map '[out]' ", codec->args, " '", path, "'");
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("ffmpeg failed (", rc, "): ", command));
  }
  absl::StatusOr<std::string> bytes = ReadFile(path);
  std::remove(path.c_str());
  return bytes;
}

absl::StatusOr<std::string> WriteTempFile(const std::string& name,
                                          const std::string& bytes) {
  static std::atomic<int> counter{0};
  ASSIGN_OR_RETURN(std::string dir, TempDir());
  const std::string path =
      absl::StrCat(dir, "/", getpid(), "_", counter++, "_", name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return path;
}

}  // namespace audiotag::testing
