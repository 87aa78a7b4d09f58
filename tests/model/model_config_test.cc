#include "src/model/model_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kMinimal[] = R"pb(
  input {
    sample_rate: 16000
    waveform {}
  }
  segment { window_samples: 16000 }
  output { name: "tags" kind: TAGS dim: 3 }
)pb";

v1::ModelConfig Parse(const std::string& text) {
  absl::StatusOr<v1::ModelConfig> config = ParseModelConfig(text, "c.pbtxt");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.value_or(v1::ModelConfig());
}

// kMinimal with `extra` merged over it (later singular fields overwrite).
v1::ModelConfig Minimal(const std::string& extra) {
  v1::ModelConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(
      std::string(kMinimal) + extra, &config))
      << extra;
  return config;
}

// Normalizes Minimal(extra) as folder "m"; returns the status.
absl::Status NormalizeWith(const std::string& extra) {
  v1::ModelConfig config = Minimal(extra);
  return NormalizeModelConfig("m", &config);
}

TEST(ParseModelConfig, UnknownFieldIsErrorWithFileLineAndColumn) {
  absl::StatusOr<v1::ModelConfig> config = ParseModelConfig(
      "name: \"m\"\ninput {\n  sample_rat: 16000\n}\n", "m/config.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("m/config.pbtxt:3:"));
  EXPECT_THAT(config.status().message(), HasSubstr("sample_rat"));
}

TEST(ParseModelConfig, SyntaxErrorHasFileAndLine) {
  absl::StatusOr<v1::ModelConfig> config = ParseModelConfig(
      "name: \"m\"\n\nsegment { window_samples: 1\n", "x.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("x.pbtxt:4:"));
}

TEST(ParseModelConfig, WrongTypeHasLine) {
  absl::StatusOr<v1::ModelConfig> config =
      ParseModelConfig("name: \"m\"\nwarmup_batches: \"two\"\n", "y.pbtxt");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("y.pbtxt:2:"));
}

TEST(ReadModelConfig, MissingFileIsNotFound) {
  EXPECT_EQ(ReadModelConfig("/nonexistent/config.pbtxt").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(NormalizeModelConfig, FillsDefaults) {
  v1::ModelConfig config = Parse(kMinimal);
  ASSERT_TRUE(NormalizeModelConfig("m", &config).ok());
  EXPECT_EQ(config.name(), "m");
  EXPECT_EQ(config.platform(), "torchscript");
  EXPECT_EQ(config.input().layout(), v1::LAYOUT_BT);
  EXPECT_EQ(config.input().waveform().gain(), 1.0f);
  EXPECT_EQ(config.segment().hop_samples(), 16000);
  EXPECT_EQ(config.batching().max_batch_size(), 8);
  EXPECT_EQ(config.batching().max_queue_delay_us(), 2000);
  EXPECT_EQ(config.batching().max_queue_size(), 4096);
  EXPECT_EQ(config.batching().bulk_batch_size_under_interactive(), 1);
  EXPECT_EQ(config.batching().interactive_window_ms(), 10000);
  EXPECT_EQ(config.instances().count(), 1);
  EXPECT_EQ(config.instances().device(), "cpu");
  EXPECT_EQ(config.warmup_batches(), 1);
  EXPECT_EQ(config.output(0).labels_file(), "labels.txt");
  EXPECT_EQ(config.version_policy().version(), 0);
}

TEST(NormalizeModelConfig, KeepsExplicitValues) {
  v1::ModelConfig config = Minimal(R"pb(
    name: "m"
    segment { hop_samples: 8000 }
    batching {
      max_batch_size: 4
      max_queue_delay_us: 0
      max_queue_size: 10
      bulk_batch_size_under_interactive: 4
      interactive_window_ms: 0
    }
    instances { count: 2 device: "cuda:1" }
    warmup_batches: 0
  )pb");
  ASSERT_TRUE(NormalizeModelConfig("m", &config).ok());
  EXPECT_EQ(config.segment().hop_samples(), 8000);
  EXPECT_EQ(config.batching().max_batch_size(), 4);
  EXPECT_EQ(config.batching().max_queue_delay_us(), 0);
  EXPECT_EQ(config.batching().max_queue_size(), 10);
  EXPECT_EQ(config.batching().bulk_batch_size_under_interactive(), 4);
  EXPECT_EQ(config.batching().interactive_window_ms(), 0);
  EXPECT_EQ(config.instances().count(), 2);
  EXPECT_EQ(config.instances().device(), "cuda:1");
  EXPECT_EQ(config.warmup_batches(), 0);
}

TEST(NormalizeModelConfig, EmbeddingHasNoDefaultLabels) {
  v1::ModelConfig config = Parse(std::string(kMinimal) +
                                 "output { name: \"e\" kind: EMBEDDING "
                                 "dim: 4 }");
  ASSERT_TRUE(NormalizeModelConfig("m", &config).ok());
  EXPECT_EQ(config.output(1).labels_file(), "");
}

TEST(NormalizeModelConfig, LogMelDefaults) {
  v1::ModelConfig config = Parse(R"pb(
    input {
      sample_rate: 16000
      log_mel { n_fft: 512 hop_length: 160 n_mels: 64 log_offset: 0.01 }
    }
    segment { window_samples: 16000 }
    output { name: "e" kind: EMBEDDING dim: 4 }
  )pb");
  ASSERT_TRUE(NormalizeModelConfig("m", &config).ok())
      << NormalizeModelConfig("m", &config);
  EXPECT_EQ(config.input().log_mel().win_length(), 512);
  EXPECT_EQ(config.input().log_mel().f_max(), 8000.0f);
  EXPECT_EQ(config.input().log_mel().power(), 2.0f);
  EXPECT_EQ(config.input().log_mel().norm_std(), 1.0f);
  EXPECT_EQ(config.input().layout(), v1::LAYOUT_BTF);
}

struct InvalidCase {
  std::string extra;  // appended to kMinimal
  std::string field;  // expected in the message
};

class NormalizeInvalid : public ::testing::TestWithParam<InvalidCase> {};

TEST_P(NormalizeInvalid, NamesTheField) {
  absl::Status status = NormalizeWith(GetParam().extra);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr(GetParam().field));
}

INSTANTIATE_TEST_SUITE_P(
    EachField, NormalizeInvalid,
    ::testing::Values(
        InvalidCase{"name: \"other\"", "name"},
        InvalidCase{"platform: \"onnx\"", "platform"},
        InvalidCase{"input { sample_rate: 0 }", "input.sample_rate"},
        InvalidCase{"input { sample_rate: 400000 }", "input.sample_rate"},
        InvalidCase{"input { layout: LAYOUT_BTF }", "input.layout"},
        InvalidCase{"input { log_mel { n_fft: 0 hop_length: 1 n_mels: 1 } }",
                    "input.log_mel.n_fft"},
        InvalidCase{"segment { window_samples: 0 }", "segment.window_samples"},
        InvalidCase{"segment { hop_samples: -1 }", "segment.hop_samples"},
        InvalidCase{"output { name: \"tags\" kind: TAGS dim: 3 }",
                    "output[1].name"},
        InvalidCase{"output { kind: TAGS dim: 3 }", "output[1].name"},
        InvalidCase{"output { name: \"o\" dim: 3 }", "output[1].kind"},
        InvalidCase{"output { name: \"o\" kind: EMBEDDING }", "output[1].dim"},
        InvalidCase{"output { name: \"o\" kind: TAGS dim: 2 "
                    "labels_file: \"../x\" }",
                    "output[1].labels_file"},
        InvalidCase{"batching { max_batch_size: -1 }",
                    "batching.max_batch_size"},
        InvalidCase{"batching { preferred_batch_size: [4, 2] }",
                    "batching.preferred_batch_size"},
        InvalidCase{"batching { preferred_batch_size: 9 }",
                    "batching.preferred_batch_size"},
        InvalidCase{"batching { max_queue_delay_us: -5 }",
                    "batching.max_queue_delay_us"},
        InvalidCase{"batching { max_queue_size: -1 }",
                    "batching.max_queue_size"},
        InvalidCase{"batching { bulk_batch_size_under_interactive: 0 }",
                    "batching.bulk_batch_size_under_interactive"},
        InvalidCase{"batching { max_batch_size: 4 "
                    "bulk_batch_size_under_interactive: 5 }",
                    "batching.bulk_batch_size_under_interactive"},
        InvalidCase{"batching { interactive_window_ms: -1 }",
                    "batching.interactive_window_ms"},
        InvalidCase{"instances { count: -1 }", "instances.count"},
        InvalidCase{"instances { device: \"gpu\" }", "instances.device"},
        InvalidCase{"instances { device: \"cuda:x\" }", "instances.device"},
        InvalidCase{"instances { intra_op_threads: -2 }",
                    "instances.intra_op_threads"},
        InvalidCase{"version_policy { version: -1 }", "version_policy.version"},
        InvalidCase{"warmup_batches: -1", "warmup_batches"}));

TEST(NormalizeModelConfig, OutputKindMustBeAKnownOne) {
  absl::Status missing = NormalizeWith("output { name: \"o\" dim: 3 }");
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(),
              HasSubstr("needs a kind: TAGS, ACTIVATIONS or EMBEDDING"));
  v1::ModelConfig config = Minimal("");
  config.mutable_output(0)->set_kind(static_cast<v1::OutputKind>(9));
  absl::Status unknown = NormalizeModelConfig("m", &config);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.message(), HasSubstr("output[0].kind"));
  EXPECT_THAT(unknown.message(), HasSubstr("has kind 9"));
}

// OutputConfig.calibration: empty or one finite value per class (scales > 0),
// only on class-score outputs; the error names the field and the index.
TEST(NormalizeModelConfig, CalibrationHasOneFiniteValuePerClass) {
  auto normalize = [](const std::string& calibration, v1::OutputKind kind) {
    v1::ModelConfig config = Minimal("");
    config.mutable_output(0)->set_kind(kind);
    EXPECT_TRUE(google::protobuf::TextFormat::MergeFromString(
        calibration, config.mutable_output(0)->mutable_calibration()))
        << calibration;
    return NormalizeModelConfig("m", &config);
  };
  EXPECT_TRUE(normalize("", v1::TAGS).ok());
  EXPECT_TRUE(normalize("bias: [-1, 0, 2.5]", v1::TAGS).ok());
  EXPECT_TRUE(
      normalize("scale: [0.5, 1, 2] bias: [0, 0, 1]", v1::ACTIVATIONS).ok());

  absl::Status wrong_size = normalize("bias: [1, 2]", v1::TAGS);
  EXPECT_EQ(wrong_size.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_size.message(), HasSubstr("output[0].calibration.bias"));
  EXPECT_THAT(wrong_size.message(), HasSubstr("has 2 values"));
  EXPECT_THAT(wrong_size.message(), HasSubstr("dim = 3"));

  absl::Status zero_scale = normalize("scale: [1, 0, 1]", v1::TAGS);
  EXPECT_EQ(zero_scale.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      zero_scale.message(),
      HasSubstr("output[0].calibration.scale[1]: must be finite and > 0"));

  absl::Status nan_bias = normalize("bias: [0, nan, 0]", v1::TAGS);
  EXPECT_EQ(nan_bias.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan_bias.message(), HasSubstr("calibration.bias[1]"));

  absl::Status embedding = normalize("bias: [0, 0, 0]", v1::EMBEDDING);
  EXPECT_EQ(embedding.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(embedding.message(), HasSubstr("only TAGS and ACTIVATIONS"));
}

TEST(NormalizeModelConfig, PadFeaturesNeedsALogMelFrontEnd) {
  const absl::Status status =
      NormalizeWith("segment { last_segment: LAST_SEGMENT_PAD_FEATURES }");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("segment.last_segment"));
  EXPECT_THAT(status.message(), HasSubstr("log_mel"));
  v1::ModelConfig config = Parse(R"pb(
    input {
      sample_rate: 16000
      log_mel { n_fft: 400 hop_length: 160 n_mels: 64 log: LOG_NONE }
    }
    segment {
      window_samples: 16000
      last_segment: LAST_SEGMENT_PAD_FEATURES
      center: true
    }
    output { name: "e" kind: EMBEDDING dim: 4 }
  )pb");
  const absl::Status log_mel = NormalizeModelConfig("m", &config);
  EXPECT_TRUE(log_mel.ok()) << log_mel;
}

TEST(NormalizeModelConfig, NeedsFrontEnd) {
  v1::ModelConfig config = Parse(R"pb(
    input { sample_rate: 16000 }
    segment { window_samples: 10 }
    output { name: "e" kind: EMBEDDING dim: 4 }
  )pb");
  absl::Status status = NormalizeModelConfig("m", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("front-end"));
}

// A stage on several sources (input.from_models): what the config alone can
// get wrong.
struct StageCase {
  std::string sources;  // the inside of from_models { ... }
  std::string message;  // expected in the error
};

class NormalizeStageInvalid : public ::testing::TestWithParam<StageCase> {};

TEST_P(NormalizeStageInvalid, NamesTheSource) {
  v1::ModelConfig config =
      Parse(absl::StrCat("input { from_models { ", GetParam().sources,
                         " } }\noutput { name: \"t\" kind: TAGS dim: 2 }\n"));
  const absl::Status status = NormalizeModelConfig("head", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    EachMistake, NormalizeStageInvalid,
    ::testing::Values(
        StageCase{"", "input.from_models.source: needs at least one source"},
        StageCase{"source { model: \"a\" output: \"e\" } source { output: "
                  "\"e\" }",
                  "input.from_models.source[1].model: is required"},
        StageCase{"source { model: \"a\" output: \"e\" } source { model: "
                  "\"b\" }",
                  "input.from_models.source[1].output: is required"},
        StageCase{"source { model: \"a\" output: \"e\" } source { model: "
                  "\"head\" output: \"e\" }",
                  "input.from_models.source[1].model: model 'head' cannot "
                  "take its own output"},
        StageCase{"source { model: \"a\" output: \"e\" dim: -1 }",
                  "input.from_models.source[0].dim: must be >= 0"},
        StageCase{"source { model: \"a\" output: \"e\" } source { model: "
                  "\"b\" output: \"e\" } source { model: \"a\" output: "
                  "\"e\" }",
                  "input.from_models.source[2]: output 'e' of model 'a' is "
                  "already source 0"}));

TEST(NormalizeModelConfig, StageOnSeveralSourcesTakesNoTimingOfItsOwn) {
  const std::string sources =
      "from_models { source { model: \"a\" output: \"e\" } source { model: "
      "\"b\" output: \"e\" } }";
  const std::string outputs = "output { name: \"t\" kind: TAGS dim: 2 }\n";
  v1::ModelConfig ok =
      Parse(absl::StrCat("input { ", sources, " }\n", outputs));
  ASSERT_TRUE(NormalizeModelConfig("head", &ok).ok());
  EXPECT_TRUE(IsStage(ok));
  ASSERT_EQ(StageSources(ok).size(), 2u);
  EXPECT_EQ(StageSources(ok)[1].model(), "b");
  v1::ModelConfig rate = Parse(
      absl::StrCat("input { sample_rate: 16000 ", sources, " }\n", outputs));
  EXPECT_THAT(NormalizeModelConfig("head", &rate).message(),
              HasSubstr("input.sample_rate"));
  v1::ModelConfig segment = Parse(absl::StrCat(
      "input { ", sources, " }\nsegment { window_samples: 10 }\n", outputs));
  EXPECT_THAT(NormalizeModelConfig("head", &segment).message(),
              HasSubstr("segment: must be left out"));
}

TEST(NormalizeModelConfig, NeedsAnOutput) {
  v1::ModelConfig config = Parse(R"pb(
    input {
      sample_rate: 16000
      waveform {}
    }
    segment { window_samples: 10 }
  )pb");
  absl::Status status = NormalizeModelConfig("m", &config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("output"));
}

TEST(ParseDevice, AcceptsCpuCudaAndIndex) {
  EXPECT_FALSE(ParseDevice("cpu")->cuda);
  EXPECT_TRUE(ParseDevice("cuda")->cuda);
  EXPECT_EQ(ParseDevice("cuda")->index, -1);
  EXPECT_EQ(ParseDevice("cuda:2")->index, 2);
  EXPECT_FALSE(ParseDevice("cuda:").ok());
  EXPECT_FALSE(ParseDevice("cuda:-1").ok());
  EXPECT_FALSE(ParseDevice("CPU").ok());
}

TEST(ReadLabels, IgnoresTrailingBlankLinesAndCarriageReturns) {
  const std::string path = ::testing::TempDir() + "/labels_ok.txt";
  std::ofstream(path) << "rock\r\njazz\nhip hop\n\n\n";
  absl::StatusOr<std::vector<std::string>> labels = ReadLabels(path);
  ASSERT_TRUE(labels.ok()) << labels.status();
  EXPECT_THAT(*labels, ElementsAre("rock", "jazz", "hip hop"));
}

TEST(ReadLabels, BlankLineInTheMiddleIsAnError) {
  const std::string path = ::testing::TempDir() + "/labels_gap.txt";
  std::ofstream(path) << "rock\n\njazz\n";
  absl::StatusOr<std::vector<std::string>> labels = ReadLabels(path);
  EXPECT_EQ(labels.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(labels.status().message(), HasSubstr(":2:"));
}

TEST(ReadLabels, MissingFileIsNotFound) {
  EXPECT_EQ(ReadLabels("/nonexistent/labels.txt").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace audiotag
