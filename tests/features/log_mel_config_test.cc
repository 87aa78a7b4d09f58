#include "src/features/log_mel_config.h"

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/features/reference_configs.h"

namespace audiotag {
namespace {

LogMelParams Resolve(const char* text) {
  v1::InputConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config));
  absl::StatusOr<LogMelParams> p = ResolveLogMelConfig(config);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : LogMelParams{};
}

TEST(LogMelConfig, ResolvesDefaults) {
  const LogMelParams p = Resolve(R"pb(
    sample_rate: 22050
    log_mel { n_fft: 1024 hop_length: 256 n_mels: 40 log_offset: 1e-6 }
  )pb");
  EXPECT_EQ(p.win_length, 1024);
  EXPECT_DOUBLE_EQ(p.f_max, 11025.0);
  EXPECT_FLOAT_EQ(p.power, 2.0f);
  EXPECT_FLOAT_EQ(p.norm_std, 1.0f);
  EXPECT_EQ(p.layout, v1::LAYOUT_BTF);
  EXPECT_EQ(p.center_pad, 512);
}

TEST(LogMelConfig, SnipEdgesFramesLikeKaldi) {
  const LogMelParams p = Resolve(testing::kAstConfig);
  EXPECT_EQ(p.ComputedFrames(399), 0);
  EXPECT_EQ(p.ComputedFrames(400), 1);
  EXPECT_EQ(p.ComputedFrames(559), 1);
  EXPECT_EQ(p.ComputedFrames(560), 2);
  EXPECT_EQ(p.ComputedFrames(16000), 98);
  EXPECT_EQ(p.OutputFrames(16000), 1024);
}

TEST(LogMelConfig, CenteredFramesLikeTorchStft) {
  const LogMelParams panns = Resolve(testing::kPannsLogMelConfig);
  EXPECT_EQ(panns.ComputedFrames(32000), 101);
  EXPECT_EQ(panns.ComputedFrames(1), 1);
  // Waveform pre-emphasis drops one sample first.
  const LogMelParams passt = Resolve(testing::kPasstConfig);
  EXPECT_EQ(passt.ComputedFrames(320000), 1000);
  EXPECT_EQ(passt.ComputedFrames(320001), 1001);
  EXPECT_EQ(passt.OutputFrames(320000), 998);
  // Keras 'same' padding of a 1 s OpenL3 window.
  EXPECT_EQ(Resolve(testing::kOpenL3Config).ComputedFrames(48000), 199);
}

}  // namespace
}  // namespace audiotag
