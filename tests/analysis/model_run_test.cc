// ModelRun's errors for audio that yields no segment (src/analysis/
// model_run.cc), against real TorchScript models in a real repository: a
// dropping model says how short the audio was, and a padding model that
// receives no samples at all says that, not "drops partial segments".

#include "src/analysis/model_run.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_repository.h"
#include "tests/model/test_models.h"

namespace audiotag {
namespace {

using ::audiotag::testing::MakeTempDir;
using ::audiotag::testing::WriteModelFolder;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Config(const std::string& last_segment) {
  return R"pb(
           input {
             sample_rate: 16000
             waveform {}
           }
           segment { window_samples: 16000 last_segment:)pb" +
         last_segment + R"pb(}
                             output { name: "e" kind: EMBEDDING dim: 4 }
  )pb";
}

class ModelRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string root = MakeTempDir("model-run");
    const std::string forward = "def forward(self, x):\n    return x[:, :4]\n";
    WriteModelFolder(root, "pad", Config("LAST_SEGMENT_PAD"), 0, 1, forward);
    WriteModelFolder(root, "drop", Config("LAST_SEGMENT_DROP"), 0, 1, forward);
    RepositoryOptions options;
    options.root = root;
    auto repository = ModelRepository::Open(options);
    ASSERT_TRUE(repository.ok()) << repository.status();
    repository_ = *std::move(repository);
  }

  std::unique_ptr<ModelRun> Run(const std::string& name) {
    auto model = repository_->Get(name);
    EXPECT_TRUE(model.ok()) << model.status();
    return std::make_unique<ModelRun>(
        *model,
        std::make_shared<RequestControl>(1, Priority::kInteractive,
                                         absl::InfiniteFuture()),
        4);
  }

  std::unique_ptr<ModelRepository> repository_;
};

TEST_F(ModelRunTest, PaddingModelWithNoSamplesDoesNotBlameDropping) {
  auto run = Run("pad");
  const absl::Status status = run->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model 'pad' received no audio"));
  EXPECT_THAT(status.message(), Not(HasSubstr("drops partial segments")));
}

TEST_F(ModelRunTest, PaddingModelPadsOneSample) {
  auto run = Run("pad");
  const std::vector<float> one = {0.5f};
  ASSERT_TRUE(run->Push(one).ok());
  ASSERT_TRUE(run->Finish().ok());
  auto result = run->Result(AggregationOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->num_segments(), 1);
}

TEST_F(ModelRunTest, DroppingModelStatesHowShortTheAudioWas) {
  auto run = Run("drop");
  const std::vector<float> ten(10, 0.5f);
  ASSERT_TRUE(run->Push(ten).ok());
  const absl::Status status = run->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("the audio (10 samples, 0.000625 s at 16000 Hz) is "
                        "shorter than model 'drop''s segment (16000 samples, "
                        "1.000 s), which drops partial segments"));
}

}  // namespace
}  // namespace audiotag
