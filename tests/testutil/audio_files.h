#ifndef AUDIOTAG_TESTS_TESTUTIL_AUDIO_FILES_H_
#define AUDIOTAG_TESTS_TESTUTIL_AUDIO_FILES_H_

// Real audio files for tests, encoded by the ffmpeg CLI at test time.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace audiotag::testing {

struct AudioSpec {
  // File extension / container: "wav", "flac", "mp3", "ogg" (vorbis),
  // "opus", "m4a" (aac).
  std::string format = "wav";
  int sample_rate = 16000;
  int channels = 1;
  double seconds = 1.0;
  // Sine frequency in Hz per channel (cycled if fewer than channels).
  std::vector<double> frequencies = {440.0};
  double amplitude = 0.5;
};

// Encodes the spec with the ffmpeg CLI and returns the file's bytes.
absl::StatusOr<std::string> MakeAudioFile(const AudioSpec& spec);

// Writes `bytes` to a fresh file under the test's temp folder; returns its
// path.
absl::StatusOr<std::string> WriteTempFile(const std::string& name,
                                          const std::string& bytes);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_TESTUTIL_AUDIO_FILES_H_
