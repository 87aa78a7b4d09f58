// Checks tools/testmodels/make_test_models.py against the real repository:
// the models it writes load, serve and fail the way its documentation says.
// Skipped where /usr/bin/python3 cannot import torch.

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_repository.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::HasSubstr;
using ::testing::Pointwise;

constexpr char kPython[] = "/usr/bin/python3";

absl::StatusOr<std::vector<Tensor>> RunOne(const Model& model,
                                           std::vector<float> segment) {
  auto task = std::make_unique<SegmentTask>();
  task->request = std::make_shared<RequestControl>(1, Priority::kInteractive,
                                                   absl::InfiniteFuture());
  task->input = Tensor{{static_cast<int64_t>(segment.size())}, segment};
  absl::Notification done;
  absl::StatusOr<std::vector<Tensor>> result;
  task->done = [&](absl::StatusOr<SegmentResult> r) {
    if (r.ok()) {
      result = std::move(r->outputs);
    } else {
      result = r.status();
    }
    done.Notify();
  };
  if (absl::Status s = model.scheduler().Enqueue(std::move(task)); !s.ok()) {
    return s;
  }
  done.WaitForNotification();
  return result;
}

class MakeTestModels : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // CTest runs each test of this suite in its own process, in parallel:
    // each needs its own folder.
    root_ = new std::string(absl::StrCat(
        ::testing::TempDir(), "/audiotag_make_test_models_", getpid()));
    std::filesystem::remove_all(*root_);
    if (std::system(
            absl::StrCat(kPython, " -c 'import torch' 2>/dev/null").c_str()) !=
        0) {
      return;
    }
    const std::string command =
        absl::StrCat(kPython, " ", AUDIOTAG_SOURCE_DIR,
                     "/tools/testmodels/make_test_models.py --out ", *root_,
                     " --models identity,tagger,broken > /dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
        ModelRepository::Open({.root = *root_});
    ASSERT_TRUE(repository.ok()) << repository.status();
    repository_ = repository->release();
  }
  static void TearDownTestSuite() {
    delete repository_;
    repository_ = nullptr;
    std::filesystem::remove_all(*root_);
    delete root_;
  }
  void SetUp() override {
    if (repository_ == nullptr) GTEST_SKIP() << kPython << " has no torch";
  }

  static std::string* root_;
  static ModelRepository* repository_;
};

std::string* MakeTestModels::root_ = nullptr;
ModelRepository* MakeTestModels::repository_ = nullptr;

TEST_F(MakeTestModels, IdentityGivesSegmentStatistics) {
  absl::StatusOr<std::shared_ptr<const Model>> model =
      repository_->Get("identity");
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> segment(16000);
  for (int i = 0; i < 16000; ++i) segment[i] = (i % 2 == 0) ? 0.5f : -0.25f;
  absl::StatusOr<std::vector<Tensor>> out = RunOne(**model, segment);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].shape, ElementsAre(4));
  EXPECT_THAT((*out)[0].data,
              Pointwise(FloatNear(1e-5),
                        std::vector<float>{0.125f, 0.375f, 0.5f, -0.25f}));
}

TEST_F(MakeTestModels, TaggerServesThreeOutputsWithLabels) {
  absl::StatusOr<v1::ModelInfo> info = repository_->Describe("tagger");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->state(), v1::READY) << info->state_reason();
  ASSERT_EQ(info->outputs_size(), 3);
  EXPECT_THAT(info->outputs(0).labels(),
              ElementsAre("guitar", "drums", "piano", "voice", "strings"));

  absl::StatusOr<std::shared_ptr<const Model>> model =
      repository_->Get("tagger");
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> segment(16000);
  for (int i = 0; i < 16000; ++i) {
    segment[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 16000.0);
  }
  absl::StatusOr<std::vector<Tensor>> out = RunOne(**model, segment);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 3u);
  EXPECT_THAT((*out)[0].shape, ElementsAre(5));
  EXPECT_EQ((*out)[1].shape.size(), 2u);  // [T, 5] frame-wise
  EXPECT_EQ((*out)[1].shape.back(), 5);
  EXPECT_THAT((*out)[2].shape, ElementsAre(16));
  for (float p : (*out)[0].data) {
    EXPECT_GT(p, 0.0f);
    EXPECT_LT(p, 1.0f);
  }
}

TEST_F(MakeTestModels, BrokenFailsWithTheFileNamed) {
  absl::StatusOr<v1::ModelInfo> info = repository_->Describe("broken");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::FAILED);
  EXPECT_THAT(info->state_reason(), HasSubstr("broken/1/model.pt"));
}

}  // namespace
}  // namespace audiotag
