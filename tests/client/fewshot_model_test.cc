// Writing a few-shot head as a model folder (client/fewshot/fewshot_model.h):
// the real model repository loads it as a stage on its backbone, and
// publishing leaves nothing behind but the finished folder.
#include "client/fewshot/fewshot_model.h"

#include <torch/script.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_config.h"
#include "src/model/model_repository.h"
#include "tests/model/test_models.h"

namespace audiotag::fewshot {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A head on a 2-value embedding: tag "high" for large e0, "low" for small.
Head TwoTagHead() {
  Head head;
  head.center = {0.5f, 0.2f};
  head.weight = {{4.0f, 0.0f}, {-4.0f, 0.0f}};
  head.bias = {0.0f, 0.0f};
  head.reports.resize(2);
  head.reports[0].label = "high";
  head.reports[1].label = "low";
  head.reports[1].method = Method::kProbe;
  return head;
}

ModelSpec Spec(const std::string& root, bool exclusive = false) {
  return {root + "/fewtags",
          {{"backbone", "embedding", 2}},
          exclusive,
          {"high", "low"}};
}

// Opens the real repository at `root` and expects "fewtags" READY; returns
// its description.
v1::ModelInfo ExpectLoadsReady(const std::string& root) {
  RepositoryOptions options;
  options.root = root;
  auto repository = ModelRepository::Open(options);
  EXPECT_TRUE(repository.ok()) << repository.status();
  if (!repository.ok()) return {};
  absl::StatusOr<v1::ModelInfo> info = (*repository)->Describe("fewtags");
  EXPECT_TRUE(info.ok()) << info.status();
  (*repository)->Stop();
  if (!info.ok()) return {};
  EXPECT_EQ(info->state(), v1::READY) << info->state_reason();
  return *info;
}

std::vector<std::string> Entries(const std::string& root) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(FewShotModel, PublishedFolderLoadsAsAStageOnTheBackbone) {
  const std::string root = testing::MakeTempDir("fewshot-publish");
  testing::WriteBackboneAndHeads(root);
  ASSERT_TRUE(PublishModel(Spec(root), TwoTagHead()).ok());
  // Only the finished folder: no staging folder left.
  EXPECT_THAT(Entries(root),
              ElementsAre("backbone", "fewtags", "head_a", "head_b"));

  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(root + "/fewtags/config.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->name(), "fewtags");
  EXPECT_EQ(config->input().from_model().model(), "backbone");
  EXPECT_EQ(config->input().from_model().output(), "embedding");
  EXPECT_EQ(config->input().from_model().dim(), 2);
  EXPECT_THAT(config->description(), HasSubstr("low (probe)"));
  ASSERT_EQ(config->output_size(), 2);
  EXPECT_EQ(config->output(0).activation(), v1::ACTIVATION_SIGMOID);

  const v1::ModelInfo info = ExpectLoadsReady(root);
  ASSERT_EQ(info.outputs_size(), 2);
  EXPECT_EQ(info.outputs(0).name(), "tags");
  EXPECT_THAT(info.outputs(0).labels(), ElementsAre("high", "low"));
}

TEST(FewShotModel, HeadOnTwoBackbonesLoadsAsAStageOnBoth) {
  const std::string root = testing::MakeTempDir("fewshot-two");
  testing::WriteBackboneAndHeads(root);
  Head head = TwoTagHead();
  head.center = {0.5f, 0.2f, 0.0f, 0.0f};
  head.weight = {{4.0f, 0.0f, 1.0f, 0.0f}, {-4.0f, 0.0f, 0.0f, 1.0f}};
  ModelSpec spec = Spec(root);
  spec.sources.push_back({"head_a", "out", 2});
  ASSERT_TRUE(PublishModel(spec, head).ok());
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(root + "/fewtags/config.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->input().has_from_model());
  ASSERT_EQ(config->input().from_models().source_size(), 2);
  EXPECT_EQ(config->input().from_models().source(0).model(), "backbone");
  EXPECT_EQ(config->input().from_models().source(1).model(), "head_a");
  EXPECT_EQ(config->input().from_models().source(1).output(), "out");
  EXPECT_EQ(config->input().from_models().source(1).dim(), 2);
  EXPECT_THAT(config->description(),
              HasSubstr("Few-shot tags on backbone/embedding + head_a/out"));

  ExpectLoadsReady(root);
}

TEST(FewShotModel, HeadTakesSegmentAndFrameWiseEmbeddings) {
  const std::string root = testing::MakeTempDir("fewshot-framewise");
  ASSERT_TRUE(PublishModel(Spec(root), TwoTagHead()).ok());
  torch::jit::Module head = torch::jit::load(root + "/fewtags/1/model.pt");
  // [B, D]: tags and activations are the same logits, equal to Score()'s.
  const std::vector<float> e = {0.9f, 0.1f};
  auto two_d = head.forward({torch::tensor(e).reshape({1, 2})}).toTuple();
  const torch::Tensor tags = two_d->elements()[0].toTensor();
  ASSERT_EQ(tags.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(torch::equal(tags, two_d->elements()[1].toTensor()));
  const std::vector<float> expected = Score(TwoTagHead(), e, false);
  EXPECT_NEAR(torch::sigmoid(tags)[0][0].item<float>(), expected[0], 1e-5);
  EXPECT_NEAR(torch::sigmoid(tags)[0][1].item<float>(), expected[1], 1e-5);
  // [B, T, D]: activations per frame, tags their mean over frames.
  const torch::Tensor frames = torch::rand({3, 5, 2});
  auto three_d = head.forward({frames}).toTuple();
  const torch::Tensor clip = three_d->elements()[0].toTensor();
  const torch::Tensor per_frame = three_d->elements()[1].toTensor();
  ASSERT_EQ(clip.sizes(), (std::vector<int64_t>{3, 2}));
  ASSERT_EQ(per_frame.sizes(), (std::vector<int64_t>{3, 5, 2}));
  EXPECT_TRUE(torch::allclose(clip, per_frame.mean(1)));
}

TEST(FewShotModel, ExclusiveUsesSoftmax) {
  const std::string root = testing::MakeTempDir("fewshot-exclusive");
  ASSERT_TRUE(PublishModel(Spec(root, true), TwoTagHead()).ok());
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(root + "/fewtags/config.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->output(0).activation(), v1::ACTIVATION_SOFTMAX);
  EXPECT_EQ(config->output(1).activation(), v1::ACTIVATION_SOFTMAX);
}

TEST(FewShotModel, AnExistingFolderIsNeverTouched) {
  const std::string root = testing::MakeTempDir("fewshot-exists");
  testing::WriteTextFile(root + "/fewtags/keep.txt", "mine");
  const absl::Status s = PublishModel(Spec(root), TwoTagHead());
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(s.message(), HasSubstr("already exists"));
  EXPECT_THAT(Entries(root), ElementsAre("fewtags"));
  EXPECT_THAT(Entries(root + "/fewtags"), ElementsAre("keep.txt"));
}

TEST(FewShotModel, OutDirErrors) {
  const std::string root = testing::MakeTempDir("fewshot-outdir");
  EXPECT_THAT(CheckOutDir(root + "/.hidden").message(),
              HasSubstr("must not be empty or start with '.'"));
  EXPECT_THAT(CheckOutDir(root + "/no/such/x").message(),
              HasSubstr("does not exist"));
  EXPECT_TRUE(CheckOutDir(root + "/fresh").ok());
  EXPECT_TRUE(CheckOutDir(root + "/fresh/").ok());
}

TEST(FewShotModel, LabelErrors) {
  EXPECT_TRUE(CheckLabel("sea shanty").ok());
  EXPECT_FALSE(CheckLabel("").ok());
  EXPECT_FALSE(CheckLabel(" padded").ok());
  EXPECT_FALSE(CheckLabel("two\nlines").ok());
  EXPECT_FALSE(CheckLabel(std::string(129, 'x')).ok());
}

}  // namespace
}  // namespace audiotag::fewshot
