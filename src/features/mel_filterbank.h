#ifndef AUDIOTAG_SRC_FEATURES_MEL_FILTERBANK_H_
#define AUDIOTAG_SRC_FEATURES_MEL_FILTERBANK_H_

// Mel filterbanks as plain row-major matrices, computed on the host in double
// precision. No LibTorch here; the log-mel front-end turns the matrix into a
// tensor once, at Create.

#include <cstdint>
#include <vector>

#include "audiotag/v1/model_config.pb.h"

namespace audiotag {

struct MelFilterbankSpec {
  int64_t n_fft = 0;       // FFT size; the bank has n_fft / 2 + 1 rows
  double sample_rate = 0;  // Hz
  int64_t n_mels = 0;      // columns
  double f_min = 0;        // Hz, lower edge of the first triangle
  double f_max = 0;        // Hz, upper edge of the last triangle (> f_min)
  v1::MelScale scale = v1::MEL_HTK;
  v1::MelNorm norm = v1::MEL_NORM_NONE;
  bool zero_dc_bin = false;  // zero row 0 (VGGish)
};

// Weights [n_fft / 2 + 1][n_mels], row-major (bin-major), so that
// mel = power_spectrum (frames x bins) * bank.
//
// MEL_HTK / MEL_SLANEY follow torchaudio.functional.melscale_fbanks: bin k
// sits at k * (sample_rate / 2) / (n_fft / 2) Hz (the sample rate halved with
// integer division, as torchaudio does), n_mels + 2 edges evenly spaced in mel
// and mapped back to Hz, triangles linear in Hz. MEL_NORM_SLANEY scales
// triangle m by 2 / (f[m + 2] - f[m]) (librosa's norm="slaney").
// MEL_NORM_L1 (any scale) then scales each band so its weights sum to 1
// (librosa >= 0.8 norm=1); a band covering no bin stays zero. zero_dc_bin is
// applied last.
//
// MEL_KALDI follows Kaldi's MelBanks (torchaudio.compliance.kaldi
// .get_mel_banks): mel = 1127 ln(1 + f / 700), bin k at k * sample_rate /
// n_fft for k < n_fft / 2, triangles linear in mel, and the Nyquist row zero.
std::vector<float> MelFilterbank(const MelFilterbankSpec& spec);

// Index of the first mel band whose weights are all zero, or -1 when every
// band covers at least one FFT bin.
int64_t FirstEmptyMelBand(const std::vector<float>& bank, int64_t n_mels);

// Mel scale conversions used by the banks above.
double HzToMel(double hz, v1::MelScale scale);
double MelToHz(double mel, v1::MelScale scale);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_MEL_FILTERBANK_H_
