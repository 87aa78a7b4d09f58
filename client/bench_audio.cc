#include "client/bench_audio.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

namespace audiotag {
namespace {

void PutLe(std::string* out, uint32_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
}

}  // namespace

std::string SynthWav(double seconds, int sample_rate, uint32_t seed) {
  const int64_t samples =
      std::max<int64_t>(1, std::llround(seconds * sample_rate));
  const uint32_t data_bytes = static_cast<uint32_t>(samples * 2);
  std::string wav;
  wav.reserve(44 + data_bytes);
  wav += "RIFF";
  PutLe(&wav, 36 + data_bytes, 4);
  wav += "WAVEfmt ";
  PutLe(&wav, 16, 4);               // fmt chunk size
  PutLe(&wav, 1, 2);                // PCM
  PutLe(&wav, 1, 2);                // mono
  PutLe(&wav, sample_rate, 4);      // sample rate
  PutLe(&wav, sample_rate * 2, 4);  // byte rate
  PutLe(&wav, 2, 2);                // block align
  PutLe(&wav, 16, 2);               // bits per sample
  wav += "data";
  PutLe(&wav, data_bytes, 4);

  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.02);
  std::uniform_real_distribution<double> pitch(110.0, 3000.0);
  const int64_t note = std::max(1, sample_rate / 2);
  double f[3] = {0, 0, 0};
  for (int64_t i = 0; i < samples; ++i) {
    if (i % note == 0) {
      for (double& freq : f) freq = pitch(rng);
    }
    const double t = static_cast<double>(i) / sample_rate;
    double x = noise(rng);
    for (double freq : f) x += 0.2 * std::sin(2 * std::numbers::pi * freq * t);
    const int16_t v = static_cast<int16_t>(
        std::clamp(std::lround(x * 32767.0), -32768L, 32767L));
    PutLe(&wav, static_cast<uint16_t>(v), 2);
  }
  return wav;
}

}  // namespace audiotag
