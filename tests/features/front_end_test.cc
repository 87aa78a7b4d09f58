#include "src/features/front_end.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "src/common/tensor.h"
#include "src/features/mel_filterbank.h"
#include "tests/features/golden.h"
#include "tests/features/reference_configs.h"

namespace audiotag {
namespace {

using ::testing::HasSubstr;

// Tolerances for the log-mel parity cases, in the output's own units.
// Both sides compute in float32 (VGGish's reference in float64), so power
// spectra agree to ~1e-6 relative; after a natural log that is ~1e-6 and after
// 10*log10 ~5e-6. Bins near the log floor or offset amplify rounding, so the
// bounds leave a wide margin while staying far below any real mistake (a wrong
// window, bin or padding moves values by 0.1 or more).
constexpr double kLogTolerance = 2e-3;  // natural-log units
constexpr double kDbTolerance = 1e-2;   // dB

v1::InputConfig ParseConfig(const std::string& text) {
  v1::InputConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config))
      << text;
  return config;
}

Tensor Load(const std::string& name) {
  absl::StatusOr<Tensor> t = testing::LoadGolden(name);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : Tensor{};
}

// Runs `config` on the golden audio and returns the output, with the layout
// forced to BTF so that it lines up with the golden [B, T, F].
Tensor RunFrontEnd(v1::InputConfig config, const std::string& audio) {
  config.set_layout(v1::LAYOUT_BTF);
  absl::StatusOr<std::unique_ptr<FrontEnd>> fe = FrontEnd::Create(config);
  EXPECT_TRUE(fe.ok()) << fe.status();
  if (!fe.ok()) return {};
  absl::StatusOr<Tensor> out = (*fe)->ForwardCpu(Load(audio));
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *std::move(out) : Tensor{};
}

void ExpectParity(const std::string& name, const v1::InputConfig& config,
                  const std::string& audio, double tolerance) {
  const Tensor want = Load(name);
  const Tensor got = RunFrontEnd(config, audio);
  ASSERT_EQ(got.shape, want.shape)
      << name << " got " << got.ShapeString() << " want " << want.ShapeString();
  const double err = testing::MaxAbsDiff(got, want);
  std::printf("[ parity ] %-10s max abs error %.3g (tolerance %.0e)\n",
              name.c_str(), err, tolerance);
  EXPECT_LE(err, tolerance) << name;
}

TEST(FrontEndParity, VggishMatchesMelFeatures) {
  ExpectParity("vggish", ParseConfig(testing::kVggishConfig), "audio_16k",
               kLogTolerance);
}

TEST(FrontEndParity, PannsMatchesTorchaudioMelSpectrogram) {
  ExpectParity("panns", ParseConfig(testing::kPannsLogMelConfig), "audio_32k",
               kDbTolerance);
}

TEST(FrontEndParity, AstMatchesTorchaudioKaldiFbank) {
  // The golden is the raw fbank: AST pads and normalises afterwards.
  v1::InputConfig config = ParseConfig(testing::kAstConfig);
  config.mutable_log_mel()->clear_num_frames();
  config.mutable_log_mel()->clear_norm_mean();
  config.mutable_log_mel()->clear_norm_std();
  ExpectParity("ast_fbank", config, "audio_16k", kLogTolerance);
}

TEST(FrontEndParity, AstPadsToTargetLengthThenNormalises) {
  const Tensor fbank = Load("ast_fbank");  // [2, 98, 128]
  const Tensor got = RunFrontEnd(ParseConfig(testing::kAstConfig), "audio_16k");
  ASSERT_EQ(got.shape, (std::vector<int64_t>{2, 1024, 128}));
  const double mean = -4.2677393, std = 9.1379948;
  double err = 0;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 1024; ++t) {
      for (int64_t f = 0; f < 128; ++f) {
        const double raw = t < 98 ? fbank.data[(b * 98 + t) * 128 + f] : 0.0;
        const double d =
            got.data[(b * 1024 + t) * 128 + f] - (raw - mean) / std;
        err = std::max(err, std::abs(d));
      }
    }
  }
  EXPECT_LE(err, kLogTolerance / std);
}

// LAST_SEGMENT_PAD_FEATURES: a row whose tail is NaN (the segmenter's mark
// of padding) gets the features of its real samples alone, frames
// zero-padded before the normalisation, as AST's loader does for a short
// clip. Reference: tools/golden/make_fidelity_golden.py (the first 100 of
// 1024 frames; the rest are padding, (0 + 4.2677393) / 9.1379948).
TEST(FrontEndParity, AstFeaturePaddingMatchesAstLoaderOnTheShortClip) {
  const Tensor want = Load("ast_feature_pad");  // [2, 100, 128]
  ASSERT_EQ(want.shape, (std::vector<int64_t>{2, 100, 128}));
  Tensor audio = Load("audio_16k");  // [2, 16000]
  ASSERT_EQ(audio.shape, (std::vector<int64_t>{2, 16000}));
  constexpr int64_t kReal = 9000;
  std::fill(audio.data.begin() + 16000 + kReal, audio.data.end(),
            std::numeric_limits<float>::quiet_NaN());
  absl::StatusOr<std::unique_ptr<FrontEnd>> fe =
      FrontEnd::Create(ParseConfig(testing::kAstConfig));
  ASSERT_TRUE(fe.ok()) << fe.status();
  for (bool both : {true, false}) {
    // Both rows in one batch (a full and a padded segment), then the padded
    // row alone.
    Tensor in = audio;
    if (!both) {
      in.shape = {1, 16000};
      in.data.erase(in.data.begin(), in.data.begin() + 16000);
    }
    absl::StatusOr<Tensor> got = (*fe)->ForwardCpu(in);
    ASSERT_TRUE(got.ok()) << got.status();
    const int64_t rows = in.shape[0];
    ASSERT_EQ(got->shape, (std::vector<int64_t>{rows, 1024, 128}));
    const double pad = 4.2677393 / 9.1379948;
    double err = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = both ? r : 1;
      for (int64_t t = 0; t < 1024; ++t) {
        for (int64_t f = 0; f < 128; ++f) {
          const double ref = t < 100 ? want.data[(b * 100 + t) * 128 + f] : pad;
          const double v = got->data[(r * 1024 + t) * 128 + f];
          ASSERT_TRUE(std::isfinite(v)) << r << " " << t << " " << f;
          err = std::max(err, std::abs(v - ref));
        }
      }
    }
    std::printf("[ parity ] ast feature padding (%s) max abs error %.3g\n",
                both ? "batch of 2" : "alone", err);
    EXPECT_LE(err, kLogTolerance / 9.1379948);
  }
}

TEST(FrontEndParity, PasstMatchesAugmentMelStftEval) {
  v1::InputConfig config = ParseConfig(testing::kPasstConfig);
  config.mutable_log_mel()->clear_num_frames();  // golden is 1 s, not 10 s
  ExpectParity("passt", config, "audio_32k", kLogTolerance);
}

TEST(FrontEndParity, EastMtatMatchesAugmentMelStftEval) {
  ExpectParity("east_mtat", ParseConfig(testing::kEastMtatConfig), "audio_16k",
               kLogTolerance);
}

TEST(FrontEndParity, OpenL3MatchesKapreStyleDecibels) {
  // The golden feeds the 32 kHz audio as if it were 48 kHz; only the numbers
  // matter here.
  ExpectParity("openl3", ParseConfig(testing::kOpenL3Config), "audio_32k",
               kDbTolerance);
}

TEST(FrontEnd, EveryReferenceConfigIsValid) {
  for (const char* text :
       {testing::kVggishConfig, testing::kPannsLogMelConfig,
        testing::kPasstConfig, testing::kAstConfig, testing::kOpenL3Config,
        testing::kEastMtatConfig, testing::kEastOpenMicConfig}) {
    EXPECT_TRUE(FrontEnd::Create(ParseConfig(text)).ok()) << text;
  }
}

TEST(FrontEnd, OutputShapesFollowTheReferenceModels) {
  auto shape = [](const char* text, int64_t samples) {
    return (*FrontEnd::Create(ParseConfig(text)))->OutputShape(samples);
  };
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(shape(testing::kVggishConfig, 15600), (Shape{1, 96, 64}));
  EXPECT_EQ(shape(testing::kPasstConfig, 320000), (Shape{1, 128, 998}));
  EXPECT_EQ(shape(testing::kAstConfig, 163840), (Shape{1024, 128}));
  EXPECT_EQ(shape(testing::kOpenL3Config, 48000), (Shape{1, 128, 199}));
  EXPECT_EQ(shape(testing::kPannsLogMelConfig, 320000), (Shape{1, 1001, 64}));
  EXPECT_EQ(shape(testing::kEastMtatConfig, 16000), (Shape{96, 50}));
}

TEST(FrontEnd, ForwardShapeMatchesOutputShapeForEveryLayout) {
  const Tensor audio = Load("audio_16k");
  for (v1::TensorLayout layout :
       {v1::LAYOUT_DEFAULT, v1::LAYOUT_BTF, v1::LAYOUT_BCTF, v1::LAYOUT_BFT,
        v1::LAYOUT_BCFT}) {
    v1::InputConfig config = ParseConfig(testing::kVggishConfig);
    config.set_layout(layout);
    auto fe = FrontEnd::Create(config);
    ASSERT_TRUE(fe.ok()) << fe.status();
    absl::StatusOr<Tensor> out = (*fe)->ForwardCpu(audio);
    ASSERT_TRUE(out.ok()) << out.status();
    std::vector<int64_t> want = {2};
    for (int64_t d : (*fe)->OutputShape(16000)) want.push_back(d);
    EXPECT_EQ(out->shape, want) << v1::TensorLayout_Name(layout);
  }
}

TEST(FrontEnd, BatchItemsAreIndependent) {
  const Tensor audio = Load("audio_16k");
  Tensor second{{1, 16000}, {audio.data.begin() + 16000, audio.data.end()}};
  auto fe = FrontEnd::Create(ParseConfig(testing::kAstConfig));
  ASSERT_TRUE(fe.ok());
  absl::StatusOr<Tensor> both = (*fe)->ForwardCpu(audio);
  absl::StatusOr<Tensor> one = (*fe)->ForwardCpu(second);
  ASSERT_TRUE(both.ok() && one.ok());
  const size_t n = one->data.size();
  for (size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(both->data[n + i], one->data[i], 1e-5) << i;
  }
}

TEST(FrontEnd, WaveformAppliesGainAndLayout) {
  v1::InputConfig config = ParseConfig(R"pb(
    sample_rate: 32000
    waveform { gain: 2 }
    layout: LAYOUT_BCT
  )pb");
  auto fe = FrontEnd::Create(config);
  ASSERT_TRUE(fe.ok()) << fe.status();
  EXPECT_EQ((*fe)->OutputShape(5), (std::vector<int64_t>{1, 5}));
  absl::StatusOr<Tensor> out =
      (*fe)->ForwardCpu(Tensor{{1, 3}, {0.5f, -1.0f, 0.25f}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape, (std::vector<int64_t>{1, 1, 3}));
  EXPECT_THAT(out->data, ::testing::ElementsAre(1.0f, -2.0f, 0.5f));
}

// OpenL3 mel256 (tools/export/openl3.py --input-repr mel256 --frontend
// audiotag): 256 HTK-scale bands at n_fft 2048 and 48 kHz leave the lowest
// bands between FFT bins. librosa (kapre's bank) and torchaudio build them as
// zero rows with a warning, and the published weights were trained so: the
// config is valid, and those bands read the floor (-top_db after the max
// reference).
TEST(FrontEnd, MelBandsNarrowerThanABinAreZeroNotAnError) {
  v1::InputConfig config = ParseConfig(testing::kOpenL3Config);
  config.mutable_log_mel()->set_n_mels(256);
  const std::vector<float> bank = MelFilterbank({.n_fft = 2048,
                                                 .sample_rate = 48000,
                                                 .n_mels = 256,
                                                 .f_min = 0,
                                                 .f_max = 24000,
                                                 .scale = v1::MEL_HTK});
  const int64_t empty = FirstEmptyMelBand(bank, 256);
  ASSERT_GE(empty, 0) << "the premise: some band covers no FFT bin";
  auto fe = FrontEnd::Create(config);
  ASSERT_TRUE(fe.ok()) << fe.status();
  absl::StatusOr<Tensor> out = (*fe)->ForwardCpu(Load("audio_32k"));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->shape.size(), 4u);  // [B, 1, n_mels, frames]
  const int64_t frames = out->shape[3];
  // The first batch item: its floor is relative to its own maximum.
  const std::vector<float> item(out->data.begin(),
                                out->data.begin() + 256 * frames);
  float lowest = std::numeric_limits<float>::infinity();
  float highest = -lowest;
  for (float v : item) {
    ASSERT_TRUE(std::isfinite(v));
    lowest = std::min(lowest, v);
    highest = std::max(highest, v);
  }
  EXPECT_LT(lowest, highest);
  // Every frame of the empty band sits at the output's minimum (the floor).
  for (int64_t t = 0; t < frames; ++t) {
    EXPECT_EQ(item[empty * frames + t], lowest) << "frame " << t;
  }
}

TEST(FrontEnd, ShortInputWithNumFramesIsPadded) {
  auto fe = FrontEnd::Create(ParseConfig(testing::kAstConfig));
  ASSERT_TRUE(fe.ok());
  absl::StatusOr<Tensor> out =
      (*fe)->ForwardCpu(Tensor{{1, 100}, std::vector<float>(100, 0.1f)});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape, (std::vector<int64_t>{1, 1024, 128}));
}

TEST(FrontEnd, ForwardCpuTurnsLibTorchErrorsIntoInternal) {
  // Reflect padding of 512 needs more than 512 samples.
  auto fe = FrontEnd::Create(ParseConfig(testing::kPannsLogMelConfig));
  ASSERT_TRUE(fe.ok());
  absl::StatusOr<Tensor> out =
      (*fe)->ForwardCpu(Tensor{{1, 10}, std::vector<float>(10, 0.1f)});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal) << out.status();
}

TEST(FrontEnd, ForwardCpuRejectsBadShapes) {
  auto fe = FrontEnd::Create(ParseConfig(testing::kVggishConfig));
  ASSERT_TRUE(fe.ok());
  EXPECT_EQ(
      (*fe)->ForwardCpu(Tensor{{4}, std::vector<float>(4)}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      (*fe)->ForwardCpu(Tensor{{1, 4}, std::vector<float>(3)}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

// Create's validation: each case breaks one field of a valid config.
struct BadConfig {
  std::string name;
  std::function<void(v1::InputConfig&)> mutate;
  std::string message;  // must appear in the error
};

class FrontEndValidation : public ::testing::TestWithParam<BadConfig> {};

TEST_P(FrontEndValidation, RejectsWithInvalidArgumentNamingTheField) {
  v1::InputConfig config = ParseConfig(testing::kAstConfig);
  GetParam().mutate(config);
  absl::StatusOr<std::unique_ptr<FrontEnd>> fe = FrontEnd::Create(config);
  ASSERT_FALSE(fe.ok());
  EXPECT_EQ(fe.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(fe.status().message()),
              HasSubstr(GetParam().message));
}

v1::LogMelFrontEnd& Mel(v1::InputConfig& c) { return *c.mutable_log_mel(); }

INSTANTIATE_TEST_SUITE_P(
    Fields, FrontEndValidation,
    ::testing::Values(
        BadConfig{"NoSampleRate", [](auto& c) { c.clear_sample_rate(); },
                  "input.sample_rate must be > 0"},
        BadConfig{"NoFrontEnd", [](auto& c) { c.clear_front_end(); },
                  "input.front_end must be set"},
        BadConfig{"ZeroHop", [](auto& c) { Mel(c).set_hop_length(0); },
                  "input.log_mel.hop_length must be > 0"},
        BadConfig{"ZeroFft", [](auto& c) { Mel(c).set_n_fft(0); },
                  "input.log_mel.n_fft must be > 0"},
        BadConfig{"WindowTooLong", [](auto& c) { Mel(c).set_win_length(600); },
                  "input.log_mel.win_length"},
        BadConfig{"ZeroMels", [](auto& c) { Mel(c).set_n_mels(0); },
                  "input.log_mel.n_mels must be > 0"},
        BadConfig{"TooManyMels", [](auto& c) { Mel(c).set_n_mels(512); },
                  "input.log_mel.n_mels (512) is too many"},
        BadConfig{"FmaxAboveNyquist", [](auto& c) { Mel(c).set_f_max(9000); },
                  "input.log_mel.f_max"},
        BadConfig{"FminAboveFmax",
                  [](auto& c) {
                    Mel(c).set_f_min(5000);
                    Mel(c).set_f_max(4000);
                  },
                  "input.log_mel.f_min"},
        BadConfig{"NegativeFmin", [](auto& c) { Mel(c).set_f_min(-1); },
                  "input.log_mel.f_min must be >= 0"},
        BadConfig{"ZeroPower", [](auto& c) { Mel(c).set_power(0); },
                  "input.log_mel.power must be > 0"},
        BadConfig{"LogOfZero", [](auto& c) { Mel(c).clear_log_floor(); },
                  "input.log_mel.log_floor or log_offset"},
        BadConfig{"ZeroStd", [](auto& c) { Mel(c).set_norm_std(0); },
                  "input.log_mel.norm_std"},
        BadConfig{"PreEmphasisRange",
                  [](auto& c) { Mel(c).set_pre_emphasis(1.5); },
                  "input.log_mel.pre_emphasis must be in [0, 1]"},
        BadConfig{"TopDbWithoutDb", [](auto& c) { Mel(c).set_top_db(80); },
                  "need log: LOG_DB"},
        BadConfig{"NegativeFrames", [](auto& c) { Mel(c).set_num_frames(-1); },
                  "input.log_mel.num_frames must be >= 0"},
        BadConfig{"CenterPadWithoutCenter",
                  [](auto& c) { Mel(c).set_center_pad(10); },
                  "input.log_mel.center_pad needs center"},
        BadConfig{"WaveformLayoutForLogMel",
                  [](auto& c) { c.set_layout(v1::LAYOUT_BCT); },
                  "input.layout LAYOUT_BCT is not a log-mel layout"},
        BadConfig{"LogMelLayoutForWaveform",
                  [](auto& c) {
                    c.mutable_waveform();
                    c.set_layout(v1::LAYOUT_BTF);
                  },
                  "input.layout LAYOUT_BTF is not a waveform layout"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace audiotag
