#include "src/features/mel_filterbank.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "tests/features/golden.h"

namespace audiotag {
namespace {

// torchaudio builds its banks in float32 and audiotag in double, so entries
// differ by float rounding (~1e-7 relative, entries <= 1). 1e-4 leaves two
// orders of magnitude of margin and still catches any wrong edge or bin
// frequency, which moves weights by 1e-2 or more.
constexpr double kBankTolerance = 1e-4;

void ExpectBank(const std::string& golden, const MelFilterbankSpec& spec) {
  absl::StatusOr<Tensor> want = testing::LoadGolden(golden);
  ASSERT_TRUE(want.ok()) << want.status();
  Tensor got;
  got.shape = {spec.n_fft / 2 + 1, spec.n_mels};
  got.data = MelFilterbank(spec);
  const double err = testing::MaxAbsDiff(got, *want);
  std::printf("[ parity ] %-18s max abs error %.3g (tolerance %.0e)\n",
              golden.c_str(), err, kBankTolerance);
  EXPECT_LE(err, kBankTolerance) << golden;
}

TEST(MelFilterbank, HtkMatchesTorchaudio) {
  ExpectBank("fbank_htk", {.n_fft = 512,
                           .sample_rate = 16000,
                           .n_mels = 64,
                           .f_min = 0,
                           .f_max = 8000,
                           .scale = v1::MEL_HTK});
}

TEST(MelFilterbank, HtkWithSlaneyNormMatchesTorchaudio) {
  ExpectBank("fbank_htk_norm", {.n_fft = 512,
                                .sample_rate = 16000,
                                .n_mels = 64,
                                .f_min = 125,
                                .f_max = 7500,
                                .scale = v1::MEL_HTK,
                                .norm = v1::MEL_NORM_SLANEY});
}

TEST(MelFilterbank, SlaneyMatchesTorchaudio) {
  ExpectBank("fbank_slaney", {.n_fft = 1024,
                              .sample_rate = 32000,
                              .n_mels = 64,
                              .f_min = 50,
                              .f_max = 14000,
                              .scale = v1::MEL_SLANEY});
}

TEST(MelFilterbank, SlaneyWithSlaneyNormMatchesTorchaudio) {
  ExpectBank("fbank_slaney_norm", {.n_fft = 1024,
                                   .sample_rate = 32000,
                                   .n_mels = 64,
                                   .f_min = 50,
                                   .f_max = 14000,
                                   .scale = v1::MEL_SLANEY,
                                   .norm = v1::MEL_NORM_SLANEY});
}

TEST(MelFilterbank, OpenL3Mel128AreaNormMatchesOldLibrosa) {
  // librosa.filters.mel(48000, 2048, 128, htk=True, norm=1) as librosa < 0.7
  // computed it (Slaney area), the bank kapre 0.1.4 trained OpenL3 with.
  ExpectBank("openl3_mel128_area", {.n_fft = 2048,
                                    .sample_rate = 48000,
                                    .n_mels = 128,
                                    .f_min = 0,
                                    .f_max = 24000,
                                    .scale = v1::MEL_HTK,
                                    .norm = v1::MEL_NORM_SLANEY});
}

TEST(MelFilterbank, OpenL3Mel128L1NormMatchesNewLibrosa) {
  // The same call with librosa >= 0.8 (unit L1 norm), as torchopenl3 runs it.
  ExpectBank("openl3_mel128_l1", {.n_fft = 2048,
                                  .sample_rate = 48000,
                                  .n_mels = 128,
                                  .f_min = 0,
                                  .f_max = 24000,
                                  .scale = v1::MEL_HTK,
                                  .norm = v1::MEL_NORM_L1});
}

TEST(MelFilterbank, L1NormMakesEveryBandSumToOne) {
  const MelFilterbankSpec spec = {.n_fft = 1024,
                                  .sample_rate = 32000,
                                  .n_mels = 64,
                                  .f_min = 50,
                                  .f_max = 14000,
                                  .scale = v1::MEL_SLANEY,
                                  .norm = v1::MEL_NORM_L1};
  const std::vector<float> bank = MelFilterbank(spec);
  for (int64_t m = 0; m < spec.n_mels; ++m) {
    double sum = 0;
    for (int64_t k = 0; k < spec.n_fft / 2 + 1; ++k) sum += bank[k * 64 + m];
    EXPECT_NEAR(sum, 1.0, 1e-5) << "band " << m;
  }
}

TEST(MelFilterbank, KaldiMatchesTorchaudioComplianceKaldi) {
  ExpectBank("fbank_kaldi", {.n_fft = 512,
                             .sample_rate = 16000,
                             .n_mels = 128,
                             .f_min = 20,
                             .f_max = 8000,
                             .scale = v1::MEL_KALDI});
}

TEST(MelFilterbank, KaldiNyquistRowIsZero) {
  const std::vector<float> bank = MelFilterbank({.n_fft = 512,
                                                 .sample_rate = 16000,
                                                 .n_mels = 40,
                                                 .f_min = 0,
                                                 .f_max = 8000,
                                                 .scale = v1::MEL_KALDI});
  for (int m = 0; m < 40; ++m) EXPECT_EQ(bank[256 * 40 + m], 0.0f);
}

TEST(MelFilterbank, ZeroDcBinZeroesRowZero) {
  const std::vector<float> bank = MelFilterbank({.n_fft = 64,
                                                 .sample_rate = 1000,
                                                 .n_mels = 4,
                                                 .f_min = 0,
                                                 .f_max = 500,
                                                 .scale = v1::MEL_HTK,
                                                 .zero_dc_bin = true});
  for (int m = 0; m < 4; ++m) EXPECT_EQ(bank[m], 0.0f);
}

TEST(MelFilterbank, ScalesRoundTrip) {
  for (v1::MelScale s : {v1::MEL_HTK, v1::MEL_SLANEY, v1::MEL_KALDI}) {
    for (double hz : {0.0, 125.0, 999.0, 1000.0, 7500.0, 22050.0}) {
      EXPECT_NEAR(MelToHz(HzToMel(hz, s), s), hz, 1e-6) << s << " " << hz;
    }
  }
  EXPECT_NEAR(HzToMel(1000.0, v1::MEL_SLANEY), 15.0, 1e-12);
  EXPECT_NEAR(HzToMel(700.0, v1::MEL_KALDI), 1127.0 * std::log(2.0), 1e-9);
}

TEST(MelFilterbank, FindsEmptyBands) {
  // 256 mel bands over 33 bins: some triangles fall between bins.
  const std::vector<float> bank = MelFilterbank({.n_fft = 64,
                                                 .sample_rate = 16000,
                                                 .n_mels = 256,
                                                 .f_min = 0,
                                                 .f_max = 8000,
                                                 .scale = v1::MEL_HTK});
  EXPECT_GE(FirstEmptyMelBand(bank, 256), 0);
  EXPECT_EQ(FirstEmptyMelBand(MelFilterbank({.n_fft = 512,
                                             .sample_rate = 16000,
                                             .n_mels = 64,
                                             .f_min = 0,
                                             .f_max = 8000}),
                              64),
            -1);
}

}  // namespace
}  // namespace audiotag
