// libFuzzer target: arbitrary bytes -> DecodeAudio, with small limits so that
// a claimed-huge or endless input stops quickly instead of timing out.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "src/audio/decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  audiotag::DecoderOptions options;
  options.max_input_bytes = 1 << 20;
  options.max_duration_seconds = 30;
  options.max_chunk_samples = 4096;
  // Two output rates, as a request for two models would ask for.
  constexpr int kRates[] = {16000, 32000};
  int64_t samples[2] = {0, 0};
  const audiotag::PcmSink sink = [&](int rate_index,
                                     absl::Span<const float> chunk) {
    if (rate_index < 0 || rate_index > 1 || chunk.empty()) std::abort();
    samples[rate_index] += static_cast<int64_t>(chunk.size());
    if (chunk.size() > static_cast<size_t>(options.max_chunk_samples)) {
      std::abort();  // the chunk bound is part of the contract
    }
    // Touch every sample so that ASan sees a read past the chunk.
    float sum = 0;
    for (float x : chunk) sum += x;
    (void)sum;
    return absl::OkStatus();
  };
  absl::StatusOr<audiotag::AudioInfo> info = audiotag::DecodeAudio(
      absl::string_view(reinterpret_cast<const char*>(data), size), kRates,
      options, sink);
  if (info.ok()) {
    // The decoder promises a positive rate and channel count on success.
    if (info->sample_rate <= 0 || info->channels <= 0) std::abort();
    if (!(info->duration_seconds <= options.max_duration_seconds + 1)) {
      std::abort();
    }
  } else if (info.status().code() == absl::StatusCode::kInternal ||
             info.status().code() == absl::StatusCode::kUnknown) {
    // A hostile file is the caller's fault, never an internal error.
    std::abort();
  }
  return 0;
}
