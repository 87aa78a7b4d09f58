#ifndef AUDIOTAG_SRC_AUDIO_DECODER_H_
#define AUDIOTAG_SRC_AUDIO_DECODER_H_

// Decodes an encoded audio file held in memory with FFmpeg (libavformat and
// libavcodec through a custom AVIOContext: no temporary files, no
// subprocess), downmixes it to mono and resamples it with libswresample to
// every rate the caller asks for, handing the samples over in bounded chunks so
// that memory does not grow with the file's length.
//
// Thread-safety: DecodeAudio is reentrant; concurrent calls share nothing.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audiotag {

struct DecoderOptions {
  // Uploads larger than this are rejected with RESOURCE_EXHAUSTED before any
  // decoding. Default 256 MiB.
  int64_t max_input_bytes = int64_t{256} << 20;
  // Audio longer than this (decoded, not claimed by the header) stops the
  // decode with RESOURCE_EXHAUSTED. Default 2 hours.
  double max_duration_seconds = 2 * 3600.0;
  // Upper bound on the samples per chunk handed to the sink. Default 1 s at
  // 48 kHz.
  int64_t max_chunk_samples = 48000;
  // Decoded samples whose magnitude exceeds this (full scale is 1.0) stop the
  // decode with INVALID_ARGUMENT naming the peak. Only float formats can hold
  // such values; past it a power spectrum can overflow to Inf. Default 1000
  // (60 dB above full scale), far beyond any real recording and below
  // float audio written with integer scaling (peaks near 32768).
  double max_sample_magnitude = 1000.0;
};

// One sample rate and channel count the decoded audio had.
struct AudioFormat {
  int sample_rate = 0;  // Hz
  int channels = 0;
  friend bool operator==(const AudioFormat&, const AudioFormat&) = default;
};

// What the decoder found in the file.
struct AudioInfo {
  std::string container;  // libavformat's short name, e.g. "mp3", "wav"
  std::string codec;      // libavcodec's name, e.g. "mp3float", "flac"
  // Of the first decoded audio (not what the container's header claims:
  // a transport stream whose audio starts late may declare neither).
  int sample_rate = 0;  // Hz
  int channels = 0;
  // Every distinct format the decoded audio had, in the order first seen:
  // one entry for an ordinary file, more for a chained Ogg whose links
  // differ or a broadcast stream that changes format midway.
  std::vector<AudioFormat> formats;
  // Of the decoded audio, after the encoder's priming and padding are
  // trimmed where the container says how much.
  double duration_seconds = 0;
  int64_t size_bytes = 0;  // of the input
};

// Receives decoded mono float samples in [-1, 1] (not clipped). `rate_index`
// indexes the `output_rates` passed to DecodeAudio. Chunks of one rate arrive
// in order; a non-OK return stops decoding and DecodeAudio returns it
// unchanged (used for cancellation and deadlines).
using PcmSink =
    std::function<absl::Status(int rate_index, absl::Span<const float>)>;

// Decodes `bytes`. Each rate in `output_rates` (Hz, 1 to 384000) gets its own
// resampled stream: for n decoded samples (per stretch of one source rate)
// what libswresample gives, as the ffmpeg CLI does, and at least
// max(1, floor(n * rate / source_rate)) samples, so any non-empty audio gives
// at least one sample at every rate. Encoder priming and end padding are
// trimmed where the container records them (skip-samples side data from
// MP3 LAME/Xing headers, Ogg and Matroska, handled inside libavcodec; the
// edit list / media duration of MP4 and M4A, applied here). Errors:
//   INVALID_ARGUMENT   empty input, no audio stream, undecodable data,
//                      zero channels or rate, bad output rate, NaN or
//                      infinite samples, samples beyond
//                      max_sample_magnitude
//   RESOURCE_EXHAUSTED input or decoded duration over the limits
// Decoding errors in the middle of a stream after some audio was decoded are
// tolerated the way the ffmpeg CLI tolerates them (the damaged packets are
// skipped); a file that yields no audio at all is INVALID_ARGUMENT.
absl::StatusOr<AudioInfo> DecodeAudio(absl::string_view bytes,
                                      absl::Span<const int> output_rates,
                                      const DecoderOptions& options,
                                      const PcmSink& sink);

// Convenience for tests and tools: the whole file as one vector per rate.
absl::StatusOr<std::vector<std::vector<float>>> DecodeAudioToVectors(
    absl::string_view bytes, absl::Span<const int> output_rates,
    const DecoderOptions& options, AudioInfo* info = nullptr);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_AUDIO_DECODER_H_
