#ifndef AUDIOTAG_TESTS_HARDENING_HOSTILE_INPUTS_H_
#define AUDIOTAG_TESTS_HARDENING_HOSTILE_INPUTS_H_

// The bad-input corpus of the hardening suite: malformed and hostile uploads,
// built at test time (by hand, byte by byte, or with the ffmpeg CLI), each
// with the gRPC codes the real server may answer it with. Shared by
// bad_input_e2e_test.cc and the soak run.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace audiotag::testing {

struct HostileUpload {
  std::string name;
  std::string bytes;
  // Acceptable answers. OK is listed only where decoding what is there is
  // the documented behaviour (a truncated or damaged file that still holds
  // audio).
  std::set<grpc::StatusCode> codes;
};

// Limits the server under test must run with for the expected codes to hold.
inline constexpr int64_t kHostileMaxUploadBytes = 4 << 20;
inline constexpr double kHostileMaxDurationSeconds = 120;

// A canonical 44-byte-header PCM WAV. `bits` 8/16/32 (32 with `is_float`
// writes IEEE float); `samples` is per channel; `data` (if not empty) is the
// raw data chunk, else zeros.
std::string MakeWav(int rate, int channels, int bits, bool is_float,
                    int64_t samples, const std::string& data = "");

// A mono float WAV at 16 kHz holding `values` (one sample each).
std::string FloatWav(const std::vector<float>& values);

// Runs the ffmpeg CLI with `args` (between the inputs and the output file)
// and returns the bytes of output file `out_name` (its extension picks the
// container). Fails the calling test (and returns "") if ffmpeg fails.
std::string Ffmpeg(const std::string& args, const std::string& out_name);

// Every hostile upload of the corpus (at least 30).
std::vector<HostileUpload> HostileUploads();

// A small good WAV (2 s of a 440 Hz tone at 16 kHz).
std::string GoodWav();

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_HARDENING_HOSTILE_INPUTS_H_
