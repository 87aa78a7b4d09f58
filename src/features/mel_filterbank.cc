#include "src/features/mel_filterbank.h"

#include <algorithm>
#include <cmath>

namespace audiotag {
namespace {

// Slaney's Auditory Toolbox scale: linear below 1 kHz, logarithmic above.
constexpr double kSlaneyHzPerMel = 200.0 / 3.0;
constexpr double kSlaneyBreakHz = 1000.0;
constexpr double kSlaneyBreakMel = kSlaneyBreakHz / kSlaneyHzPerMel;  // 15
const double kSlaneyLogStep = std::log(6.4) / 27.0;

// Triangles linear in Hz between mel-spaced edges (HTK and Slaney scales).
std::vector<float> HzTriangles(const MelFilterbankSpec& spec) {
  const int64_t n_bins = spec.n_fft / 2 + 1;
  const int64_t n_mels = spec.n_mels;
  const double mel_lo = HzToMel(spec.f_min, spec.scale);
  const double mel_hi = HzToMel(spec.f_max, spec.scale);
  std::vector<double> edges(n_mels + 2);
  for (int64_t i = 0; i < n_mels + 2; ++i) {
    const double mel = mel_lo + (mel_hi - mel_lo) * static_cast<double>(i) /
                                    static_cast<double>(n_mels + 1);
    edges[i] = MelToHz(mel, spec.scale);
  }
  const double nyquist =
      static_cast<double>(static_cast<int64_t>(spec.sample_rate) / 2);
  std::vector<float> bank(n_bins * n_mels, 0.0f);
  for (int64_t k = 0; k < n_bins; ++k) {
    const double hz = n_bins > 1 ? nyquist * static_cast<double>(k) /
                                       static_cast<double>(n_bins - 1)
                                 : 0.0;
    for (int64_t m = 0; m < n_mels; ++m) {
      const double up = (hz - edges[m]) / (edges[m + 1] - edges[m]);
      const double down = (edges[m + 2] - hz) / (edges[m + 2] - edges[m + 1]);
      double w = std::max(0.0, std::min(up, down));
      if (spec.norm == v1::MEL_NORM_SLANEY) {
        w *= 2.0 / (edges[m + 2] - edges[m]);
      }
      bank[k * n_mels + m] = static_cast<float>(w);
    }
  }
  return bank;
}

// Kaldi: triangles linear in mel over bins 0 .. n_fft/2 - 1; Nyquist row zero.
std::vector<float> KaldiTriangles(const MelFilterbankSpec& spec) {
  const int64_t n_bins = spec.n_fft / 2 + 1;
  const int64_t n_mels = spec.n_mels;
  const double mel_lo = HzToMel(spec.f_min, v1::MEL_KALDI);
  const double mel_hi = HzToMel(spec.f_max, v1::MEL_KALDI);
  const double delta = (mel_hi - mel_lo) / static_cast<double>(n_mels + 1);
  const double bin_hz = spec.sample_rate / static_cast<double>(spec.n_fft);
  std::vector<float> bank(n_bins * n_mels, 0.0f);
  for (int64_t k = 0; k + 1 < n_bins; ++k) {
    const double mel = HzToMel(bin_hz * static_cast<double>(k), v1::MEL_KALDI);
    for (int64_t m = 0; m < n_mels; ++m) {
      const double left = mel_lo + static_cast<double>(m) * delta;
      const double center = left + delta;
      const double right = center + delta;
      const double w =
          std::max(0.0, std::min((mel - left) / delta, (right - mel) / delta));
      bank[k * n_mels + m] = static_cast<float>(w);
    }
  }
  return bank;
}

// Scales each band (column) so that its weights sum to 1; an empty band stays
// zero (librosa.util.normalize(norm=1) leaves a zero row alone).
void NormalizeL1(std::vector<float>& bank, int64_t n_mels) {
  const int64_t n_bins = static_cast<int64_t>(bank.size()) / n_mels;
  for (int64_t m = 0; m < n_mels; ++m) {
    double sum = 0;
    for (int64_t k = 0; k < n_bins; ++k) sum += std::abs(bank[k * n_mels + m]);
    if (sum <= 0) continue;
    for (int64_t k = 0; k < n_bins; ++k) {
      bank[k * n_mels + m] =
          static_cast<float>(static_cast<double>(bank[k * n_mels + m]) / sum);
    }
  }
}

}  // namespace

double HzToMel(double hz, v1::MelScale scale) {
  switch (scale) {
    case v1::MEL_SLANEY:
      if (hz < kSlaneyBreakHz) return hz / kSlaneyHzPerMel;
      return kSlaneyBreakMel + std::log(hz / kSlaneyBreakHz) / kSlaneyLogStep;
    case v1::MEL_KALDI:
      return 1127.0 * std::log(1.0 + hz / 700.0);
    default:
      return 2595.0 * std::log10(1.0 + hz / 700.0);
  }
}

double MelToHz(double mel, v1::MelScale scale) {
  switch (scale) {
    case v1::MEL_SLANEY:
      if (mel < kSlaneyBreakMel) return mel * kSlaneyHzPerMel;
      return kSlaneyBreakHz *
             std::exp(kSlaneyLogStep * (mel - kSlaneyBreakMel));
    case v1::MEL_KALDI:
      return 700.0 * (std::exp(mel / 1127.0) - 1.0);
    default:
      return 700.0 * (std::pow(10.0, mel / 2595.0) - 1.0);
  }
}

std::vector<float> MelFilterbank(const MelFilterbankSpec& spec) {
  std::vector<float> bank =
      spec.scale == v1::MEL_KALDI ? KaldiTriangles(spec) : HzTriangles(spec);
  if (spec.norm == v1::MEL_NORM_L1) NormalizeL1(bank, spec.n_mels);
  if (spec.zero_dc_bin) {
    std::fill(bank.begin(), bank.begin() + spec.n_mels, 0.0f);
  }
  return bank;
}

int64_t FirstEmptyMelBand(const std::vector<float>& bank, int64_t n_mels) {
  const int64_t n_bins = static_cast<int64_t>(bank.size()) / n_mels;
  for (int64_t m = 0; m < n_mels; ++m) {
    bool any = false;
    for (int64_t k = 0; k < n_bins && !any; ++k) any = bank[k * n_mels + m] > 0;
    if (!any) return m;
  }
  return -1;
}

}  // namespace audiotag
