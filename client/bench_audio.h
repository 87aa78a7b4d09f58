#ifndef AUDIOTAG_CLIENT_BENCH_AUDIO_H_
#define AUDIOTAG_CLIENT_BENCH_AUDIO_H_

// Synthetic audio for `audiotag bench --synth_seconds`: a WAV file built in
// memory, so a benchmark needs no audio on disk.

#include <cstdint>
#include <string>

namespace audiotag {

// A mono 16-bit PCM WAV of `seconds` at `sample_rate`: a few sines whose
// frequencies change every half second plus low-level noise, deterministic
// for a given `seed`. `seconds` is clamped to at least one sample.
std::string SynthWav(double seconds, int sample_rate = 16000,
                     uint32_t seed = 1);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_BENCH_AUDIO_H_
