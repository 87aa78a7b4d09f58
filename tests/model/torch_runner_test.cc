#include "src/model/torch_runner.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_config.h"
#include "tests/model/test_models.h"

namespace audiotag {
namespace {

using ::audiotag::testing::MakeTempDir;
using ::audiotag::testing::SaveScriptModule;
using ::audiotag::testing::WaveformConfig;
using ::audiotag::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

v1::ModelConfig Config(int64_t window, const std::string& outputs) {
  absl::StatusOr<v1::ModelConfig> config =
      ParseModelConfig(WaveformConfig(window, outputs), "test");
  EXPECT_TRUE(config.ok()) << config.status();
  v1::ModelConfig c = config.value_or(v1::ModelConfig());
  absl::Status status = NormalizeModelConfig("m", &c);
  EXPECT_TRUE(status.ok()) << status;
  return c;
}

// Saves `forward` as a model and loads a runner for it.
absl::StatusOr<std::unique_ptr<TorchRunner>> Load(const v1::ModelConfig& config,
                                                  const std::string& forward) {
  const std::string path = MakeTempDir("model") + "/model.pt";
  SaveScriptModule(path, forward);
  return TorchRunner::Create(config, path);
}

Tensor Batch(std::vector<int64_t> shape, std::vector<float> data) {
  return Tensor{std::move(shape), std::move(data)};
}

constexpr char kIdentity[] = "def forward(self, x):\n  return x\n";

TEST(TorchRunner, IdentityEmbeddingEqualsInput) {
  auto runner = Load(Config(4, "output { name: \"e\" kind: EMBEDDING dim: 4 }"),
                     kIdentity);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const Tensor batch = Batch({2, 4}, {1, 2, 3, 4, -1, -2, -3, -4});
  absl::StatusOr<std::vector<Tensor>> out = (*runner)->Run(batch);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_THAT((*out)[0].shape, ElementsAre(2, 4));
  EXPECT_THAT((*out)[0].data, ElementsAreArray(batch.data));
  EXPECT_EQ((*runner)->device(), "cpu");
}

TEST(TorchRunner, WaveformGainIsApplied) {
  v1::ModelConfig config =
      Config(2, "output { name: \"e\" kind: EMBEDDING dim: 2 }");
  config.mutable_input()->mutable_waveform()->set_gain(2.0f);
  auto runner = Load(config, kIdentity);
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto out = (*runner)->Run(Batch({1, 2}, {1.5f, -3}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].data, ElementsAre(3.0f, -6.0f));
}

TEST(TorchRunner, TupleOutputsSelectedByIndex) {
  auto runner =
      Load(Config(3, R"pb(
             output { name: "sum" kind: EMBEDDING dim: 1 source: "1" }
             output { name: "first" kind: EMBEDDING dim: 2 source: "0" }
           )pb"),
           "def forward(self, x):\n"
           "  return (x[:, :2], x.sum(1, keepdim=True))\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto out = (*runner)->Run(Batch({2, 3}, {1, 2, 3, 4, 5, 6}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].shape, ElementsAre(2, 1));
  EXPECT_THAT((*out)[0].data, ElementsAre(6, 15));
  EXPECT_THAT((*out)[1].shape, ElementsAre(2, 2));
  EXPECT_THAT((*out)[1].data, ElementsAre(1, 2, 4, 5));
}

TEST(TorchRunner, ListOutputsSelectedByIndex) {
  auto runner = Load(Config(2,
                            "output { name: \"neg\" kind: EMBEDDING dim: 2 "
                            "source: \"1\" }"),
                     "def forward(self, x):\n  return [x, -x]\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto out = (*runner)->Run(Batch({1, 2}, {1, 2}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].data, ElementsAre(-1, -2));
}

TEST(TorchRunner, DictOutputsSelectedByKey) {
  auto runner =
      Load(Config(2, R"pb(
             output { name: "a" kind: EMBEDDING dim: 2 source: "double" }
             output { name: "b" kind: EMBEDDING dim: 2 source: "plain" }
           )pb"),
           "def forward(self, x):\n"
           "  return {'plain': x, 'double': x * 2.0}\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto out = (*runner)->Run(Batch({1, 2}, {1, -1}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].data, ElementsAre(2, -2));
  EXPECT_THAT((*out)[1].data, ElementsAre(1, -1));
}

TEST(TorchRunner, UnknownDictKeyFailsAtLoadNamingTheKeys) {
  auto runner = Load(Config(2,
                            "output { name: \"a\" kind: EMBEDDING dim: 2 "
                            "source: \"nope\" }"),
                     "def forward(self, x):\n  return {'plain': x}\n");
  ASSERT_EQ(runner.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(runner.status().message(), HasSubstr("'nope'"));
  EXPECT_THAT(runner.status().message(), HasSubstr("plain"));
  EXPECT_THAT(runner.status().message(), HasSubstr("warm-up"));
}

// y = scale * x + bias per class, before the activation; on a frame-wise
// [B, frames, dim] output the per-class vectors apply to every frame.
TEST(TorchRunner, CalibrationIsAppliedPerClassBeforeTheActivation) {
  auto runner = Load(Config(6, R"pb(
                       output {
                         name: "tags"
                         kind: TAGS
                         dim: 3
                         source: "0"
                         activation: ACTIVATION_SIGMOID
                         calibration {
                           scale: [ 2, 1, 0.5 ]
                           bias: [ -1, 0, 3 ]
                         }
                       }
                       output {
                         name: "frames"
                         kind: ACTIVATIONS
                         dim: 3
                         source: "1"
                         calibration { bias: [ 1, 2, 3 ] }
                       }
                     )pb"),
                     "def forward(self, x):\n"
                     "  return (x[:, :3], x.reshape(x.size(0), 2, 3))\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  const std::vector<float> x = {0.5f, -1.0f, 2.0f, 4.0f, 5.0f, 6.0f};
  auto out = (*runner)->Run(Batch({1, 6}, x));
  ASSERT_TRUE(out.ok()) << out.status();
  const float scale[] = {2, 1, 0.5f}, bias[] = {-1, 0, 3};
  std::vector<float> tags;
  for (int c = 0; c < 3; ++c) {
    tags.push_back(1.0f / (1.0f + std::exp(-(scale[c] * x[c] + bias[c]))));
  }
  EXPECT_THAT((*out)[0].data, Pointwise(FloatNear(1e-6), tags));
  EXPECT_THAT((*out)[1].shape, ElementsAre(1, 2, 3));
  EXPECT_THAT((*out)[1].data, ElementsAre(1.5f, 1.0f, 5.0f, 5.0f, 7.0f, 9.0f));
}

TEST(TorchRunner, SigmoidAndSoftmaxOverLastAxis) {
  auto runner = Load(Config(3, R"pb(
                       output {
                         name: "s"
                         kind: EMBEDDING
                         dim: 3
                         activation: ACTIVATION_SIGMOID
                       }
                       output {
                         name: "m"
                         kind: EMBEDDING
                         dim: 3
                         activation: ACTIVATION_SOFTMAX
                       }
                     )pb"),
                     "def forward(self, x):\n  return (x, x)\n");
  ASSERT_FALSE(runner.ok());  // sources "" with a tuple: the config is wrong
  EXPECT_THAT(runner.status().message(), HasSubstr("source"));

  runner = Load(Config(3, R"pb(
                  output {
                    name: "s"
                    kind: EMBEDDING
                    dim: 3
                    activation: ACTIVATION_SIGMOID
                  }
                  output {
                    name: "m"
                    kind: EMBEDDING
                    dim: 3
                    activation: ACTIVATION_SOFTMAX
                  }
                )pb"),
                kIdentity);
  ASSERT_TRUE(runner.ok()) << runner.status();
  const std::vector<float> x = {0.0f, 1.0f, -2.0f};
  auto out = (*runner)->Run(Batch({1, 3}, x));
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<float> sigmoid, softmax;
  float sum = 0;
  for (float v : x) sum += std::exp(v);
  for (float v : x) {
    sigmoid.push_back(1.0f / (1.0f + std::exp(-v)));
    softmax.push_back(std::exp(v) / sum);
  }
  EXPECT_THAT((*out)[0].data, Pointwise(FloatNear(1e-6), sigmoid));
  EXPECT_THAT((*out)[1].data, Pointwise(FloatNear(1e-6), softmax));
}

TEST(TorchRunner, FramewiseActivations) {
  auto runner =
      Load(Config(6,
                  "output { name: \"act\" kind: ACTIVATIONS dim: 2 "
                  "activation: ACTIVATION_SOFTMAX labels_file: \"\" }"),
           "def forward(self, x):\n  return x.reshape(x.size(0), 3, 2)\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto out = (*runner)->Run(Batch({1, 6}, {0, 0, 1, 1, 5, 5}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].shape, ElementsAre(1, 3, 2));
  EXPECT_THAT((*out)[0].data,
              Pointwise(FloatNear(1e-6), std::vector<float>(6, 0.5f)));
}

TEST(TorchRunner, FramewiseOutputForTagsIsAMismatch) {
  auto runner =
      Load(Config(6, "output { name: \"tags\" kind: TAGS dim: 2 }"),
           "def forward(self, x):\n  return x.reshape(x.size(0), 3, 2)\n");
  ASSERT_EQ(runner.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(runner.status().message(), HasSubstr("'tags'"));
  EXPECT_THAT(runner.status().message(), HasSubstr("[8, 3, 2]"));
}

TEST(TorchRunner, DimMismatchFailsAtLoadNamingOutputAndShapes) {
  auto runner = Load(
      Config(4, "output { name: \"emb\" kind: EMBEDDING dim: 5 }"), kIdentity);
  ASSERT_EQ(runner.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(runner.status().message(), HasSubstr("'emb'"));
  EXPECT_THAT(runner.status().message(), HasSubstr("[8, 4]"));
  EXPECT_THAT(runner.status().message(), HasSubstr("[8, 5]"));
  EXPECT_THAT(runner.status().message(), HasSubstr("model.pt"));
}

TEST(TorchRunner, ForwardExceptionIsInternalNamingTheModel) {
  auto runner = Load(Config(2, "output { name: \"e\" kind: EMBEDDING dim: 2 }"),
                     "def forward(self, x):\n"
                     "  assert x.size(0) != 3, 'three is bad'\n"
                     "  return x\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  auto out = (*runner)->Run(Batch({3, 2}, std::vector<float>(6, 0)));
  ASSERT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(out.status().message(), HasSubstr("model m forward failed"));
  EXPECT_THAT(out.status().message(), HasSubstr("three is bad"));
}

TEST(TorchRunner, WrongBatchShapeIsInvalidArgument) {
  auto runner = Load(Config(2, "output { name: \"e\" kind: EMBEDDING dim: 2 }"),
                     kIdentity);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->Run(Batch({1, 3}, {1, 2, 3})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*runner)->Run(Batch({2, 2}, {1, 2})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*runner)->Run(Batch({2}, {1, 2})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TorchRunner, CorruptModelFileIsInvalidArgumentNamingTheFile) {
  const std::string path = MakeTempDir("corrupt") + "/model.pt";
  WriteTextFile(path, std::string("\x13\x37 not a zip archive \xff\x00", 24));
  auto runner = TorchRunner::Create(
      Config(2, "output { name: \"e\" kind: EMBEDDING dim: 2 }"), path);
  ASSERT_EQ(runner.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(runner.status().message(), HasSubstr(path));
}

TEST(TorchRunner, MissingModelFileIsNotFound) {
  auto runner = TorchRunner::Create(
      Config(2, "output { name: \"e\" kind: EMBEDDING dim: 2 }"),
      MakeTempDir("missing") + "/model.pt");
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kNotFound);
}

TEST(TorchRunner, CudaWithoutCudaIsFailedPrecondition) {
  if (CudaAvailable()) GTEST_SKIP() << "CUDA is available here";
  v1::ModelConfig config =
      Config(2, "output { name: \"e\" kind: EMBEDDING dim: 2 }");
  config.mutable_instances()->set_device("cuda:0");
  auto runner = Load(config, kIdentity);
  ASSERT_EQ(runner.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(runner.status().message(), HasSubstr("CUDA is not available"));
}

TEST(TorchRunner, LogMelFrontEndFeedsTheNetwork) {
  absl::StatusOr<v1::ModelConfig> parsed = ParseModelConfig(
      R"pb(
        input {
          sample_rate: 16000
          log_mel { n_fft: 400 hop_length: 160 n_mels: 8 log_offset: 0.01 }
        }
        segment { window_samples: 1600 }
        output { name: "e" kind: EMBEDDING dim: 8 }
      )pb",
      "test");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  v1::ModelConfig config = *parsed;
  ASSERT_TRUE(NormalizeModelConfig("m", &config).ok());
  // [B, T, F] -> mean over frames.
  auto runner = Load(config, "def forward(self, x):\n  return x.mean(1)\n");
  ASSERT_TRUE(runner.ok()) << runner.status();
  Tensor batch = Batch({2, 1600}, std::vector<float>(3200, 0.0f));
  for (int i = 0; i < 1600; ++i) {
    batch.data[1600 + i] = std::sin(2 * M_PI * 1000.0 * i / 16000.0);
  }
  auto out = (*runner)->Run(batch);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].shape, ElementsAre(2, 8));
  // Silence gives log(0 + 0.01) in every band; a tone raises some band.
  for (int f = 0; f < 8; ++f) {
    EXPECT_NEAR((*out)[0].data[f], std::log(0.01f), 1e-4);
  }
  float loudest = -100;
  for (int f = 0; f < 8; ++f)
    loudest = std::max(loudest, (*out)[0].data[8 + f]);
  EXPECT_GT(loudest, 0.0f);
}

}  // namespace
}  // namespace audiotag
