// Pipeline stages in the model repository (input.from_model, from_models):
// load order,
// the load-time checks against the source, and what a source's reload or
// removal does to its stages.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_repository.h"
#include "tests/model/test_models.h"

namespace audiotag {
namespace {

namespace fs = std::filesystem;

using ::audiotag::testing::MakeTempDir;
using ::audiotag::testing::StageConfig;
using ::audiotag::testing::WriteBackboneAndHeads;
using ::audiotag::testing::WriteModelFolder;
using ::audiotag::testing::WriteReprogrammingChain;
using ::testing::HasSubstr;

constexpr char kPassThrough[] = "def forward(self, e):\n    return e\n";

std::unique_ptr<ModelRepository> OpenOrDie(const std::string& root) {
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Open({.root = root});
  EXPECT_TRUE(repository.ok()) << repository.status();
  return repository.ok() ? *std::move(repository) : nullptr;
}

v1::ModelInfo InfoOf(const ModelRepository& repository,
                     const std::string& name) {
  absl::StatusOr<v1::ModelInfo> info = repository.Describe(name);
  EXPECT_TRUE(info.ok()) << info.status();
  return info.ok() ? *info : v1::ModelInfo();
}

TEST(PipelineRepository, StagesLoadAgainstTheirSourceAndInheritTiming) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  auto repository = OpenOrDie(root);
  auto backbone = repository->Get("backbone");
  auto head = repository->Get("head_a");
  ASSERT_TRUE(backbone.ok()) << backbone.status();
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_FALSE((*backbone)->is_stage());
  EXPECT_TRUE((*head)->is_stage());
  EXPECT_EQ((*head)->source(), *backbone);
  EXPECT_EQ((*head)->source_output(), 0);
  EXPECT_EQ((*head)->depth(), 1);
  const v1::ModelInfo info = InfoOf(*repository, "head_b");
  EXPECT_EQ(info.state(), v1::READY) << info.state_reason();
  EXPECT_EQ(info.sample_rate(), 16000);
  EXPECT_DOUBLE_EQ(info.segment_seconds(), 1.0);
}

TEST(PipelineRepository, MissingSourceFailsUntilItAppears) {
  const std::string root = MakeTempDir("models");
  WriteModelFolder(root, "head",
                   StageConfig("backbone", "embedding",
                               "output { name: \"e\" kind: EMBEDDING dim: 2 }"),
                   0, 1, kPassThrough);
  auto repository = OpenOrDie(root);
  v1::ModelInfo info = InfoOf(*repository, "head");
  EXPECT_EQ(info.state(), v1::FAILED);
  EXPECT_THAT(info.state_reason(), HasSubstr("source model 'backbone'"));
  EXPECT_THAT(repository->Get("head").status().message(),
              HasSubstr("not ready"));

  WriteBackboneAndHeads(root);
  repository->Rescan();
  EXPECT_EQ(InfoOf(*repository, "head").state(), v1::READY)
      << InfoOf(*repository, "head").state_reason();
}

TEST(PipelineRepository, DimMismatchFailsAtLoad) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  WriteModelFolder(
      root, "wide",
      "input { from_model { model: \"backbone\" output: \"embedding\" dim: 3 "
      "} }\noutput { name: \"e\" kind: EMBEDDING dim: 3 }\n",
      0, 1, kPassThrough);
  auto repository = OpenOrDie(root);
  const v1::ModelInfo info = InfoOf(*repository, "wide");
  EXPECT_EQ(info.state(), v1::FAILED);
  EXPECT_THAT(info.state_reason(), HasSubstr("input.from_model.dim"));
  EXPECT_THAT(info.state_reason(), HasSubstr("has dim 2"));
}

TEST(PipelineRepository, UnknownSourceOutputFailsAtLoad) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  WriteModelFolder(root, "typo",
                   StageConfig("backbone", "embeding",
                               "output { name: \"e\" kind: EMBEDDING dim: 2 }"),
                   0, 1, kPassThrough);
  auto repository = OpenOrDie(root);
  const v1::ModelInfo info = InfoOf(*repository, "typo");
  EXPECT_EQ(info.state(), v1::FAILED);
  EXPECT_THAT(info.state_reason(), HasSubstr("has no output 'embeding'"));
}

TEST(PipelineRepository, WarmupCatchesAStageThatReadsPastTheSourceShape) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  WriteModelFolder(root, "greedy",
                   StageConfig("backbone", "embedding",
                               "output { name: \"e\" kind: EMBEDDING dim: 1 }"),
                   0, 1, "def forward(self, e):\n    return e[:, 2:3]\n");
  auto repository = OpenOrDie(root);
  const v1::ModelInfo info = InfoOf(*repository, "greedy");
  EXPECT_EQ(info.state(), v1::FAILED);
  EXPECT_THAT(info.state_reason(), HasSubstr("warm-up"));
}

TEST(PipelineRepository, CycleFailsEveryModelOnIt) {
  const std::string root = MakeTempDir("models");
  const std::string out = "output { name: \"e\" kind: EMBEDDING dim: 2 }";
  WriteModelFolder(root, "a", StageConfig("b", "e", out), 0, 1, kPassThrough);
  WriteModelFolder(root, "b", StageConfig("a", "e", out), 0, 1, kPassThrough);
  auto repository = OpenOrDie(root);
  for (const char* name : {"a", "b"}) {
    const v1::ModelInfo info = InfoOf(*repository, name);
    EXPECT_EQ(info.state(), v1::FAILED);
    EXPECT_THAT(info.state_reason(), HasSubstr("cycle"));
  }
}

// A stage on the backbone and head_a (whose timing is the backbone's).
std::string TwoSourceConfig(const std::string& second_model,
                            const std::string& second_output,
                            const std::string& second_dim = "") {
  return absl::StrCat(
      "input { from_models {\n"
      "  source { model: \"backbone\" output: \"embedding\" dim: 2 }\n"
      "  source { model: \"",
      second_model, "\" output: \"", second_output, "\" ", second_dim,
      " }\n} }\noutput { name: \"e\" kind: EMBEDDING dim: 4 }\n");
}

TEST(PipelineRepository, StageOnTwoSourcesLoadsAgainstBoth) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  WriteModelFolder(root, "both", TwoSourceConfig("head_a", "out", "dim: 2"), 0,
                   1, kPassThrough);
  auto repository = OpenOrDie(root);
  auto both = repository->Get("both");
  ASSERT_TRUE(both.ok()) << both.status();
  ASSERT_EQ((*both)->sources().size(), 2u);
  EXPECT_EQ((*both)->sources()[0].model, *repository->Get("backbone"));
  EXPECT_EQ((*both)->sources()[1].model, *repository->Get("head_a"));
  EXPECT_EQ((*both)->depth(), 2);  // head_a is a stage itself
  const v1::ModelInfo info = InfoOf(*repository, "both");
  EXPECT_EQ(info.sample_rate(), 16000);  // the primary's root timing
  EXPECT_DOUBLE_EQ(info.segment_seconds(), 1.0);
  EXPECT_EQ(info.config().input().from_models().source_size(), 2);
}

TEST(PipelineRepository, StageOnTwoSourcesChecksEachAtLoad) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  WriteReprogrammingChain(root);
  struct Case {
    std::string name, config, reason;
  };
  const std::vector<Case> cases = {
      {"unknown", TwoSourceConfig("nope", "out"),
       "source model 'nope' is not available: unknown model 'nope'"},
      {"kind", TwoSourceConfig("head_b", "scores"),
       "input.from_models.source[1].output: output 'scores' of model "
       "'head_b' is TAGS; a stage with several sources concatenates "
       "EMBEDDING outputs"},
      {"dim", TwoSourceConfig("head_a", "out", "dim: 3"),
       "input.from_models.source[1].dim: the stage expects dim 3 but output "
       "'out' of model 'head_a' has dim 2"},
      {"output", TwoSourceConfig("head_a", "typo"),
       "input.from_models.source[1].output: model 'head_a' has no output "
       "'typo'"},
      {"frames", TwoSourceConfig("transform", "features"),
       "input.from_models.source[1].output: output 'features' of model "
       "'transform' is frame-wise"},
  };
  for (const Case& c : cases) {
    WriteModelFolder(root, c.name, c.config, 0, 1, kPassThrough);
  }
  auto repository = OpenOrDie(root);
  for (const Case& c : cases) {
    const v1::ModelInfo info = InfoOf(*repository, c.name);
    EXPECT_EQ(info.state(), v1::FAILED) << c.name;
    EXPECT_THAT(info.state_reason(), HasSubstr(c.reason)) << c.name;
  }
}

TEST(PipelineRepository, CycleThroughASecondSourceFailsEveryModelOnIt) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  WriteModelFolder(root, "x", TwoSourceConfig("y", "e"), 0, 1, kPassThrough);
  WriteModelFolder(
      root, "y",
      StageConfig("x", "e", "output { name: \"e\" kind: EMBEDDING dim: 4 }"), 0,
      1, kPassThrough);
  auto repository = OpenOrDie(root);
  EXPECT_THAT(InfoOf(*repository, "x").state_reason(),
              HasSubstr("the models form a cycle: x -> y -> x"));
  EXPECT_THAT(InfoOf(*repository, "y").state_reason(),
              HasSubstr("the models form a cycle: y -> x -> y"));
  EXPECT_EQ(InfoOf(*repository, "head_a").state(), v1::READY);
}

TEST(PipelineRepository, SourceReloadRelinksStages) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  auto repository = OpenOrDie(root);
  auto old_head = repository->Get("head_a");
  ASSERT_TRUE(old_head.ok());
  WriteModelFolder(root, "backbone",
                   InfoOf(*repository, "backbone").config().DebugString(), 0, 2,
                   "def forward(self, x):\n    return x[:, :2]\n");
  repository->Rescan();
  auto backbone = repository->Get("backbone");
  auto head = repository->Get("head_a");
  ASSERT_TRUE(backbone.ok() && head.ok());
  EXPECT_EQ((*backbone)->version(), 2);
  EXPECT_EQ((*head)->source(), *backbone);
  // A request that resolved the old chain still holds all of it.
  EXPECT_EQ((*old_head)->source()->version(), 1);
}

TEST(PipelineRepository, RemovedSourceFailsItsStages) {
  const std::string root = MakeTempDir("models");
  WriteBackboneAndHeads(root);
  auto repository = OpenOrDie(root);
  fs::remove_all(fs::path(root) / "backbone");
  repository->Rescan();
  const v1::ModelInfo info = InfoOf(*repository, "head_a");
  EXPECT_EQ(info.state(), v1::FAILED);
  EXPECT_THAT(info.state_reason(), HasSubstr("source model 'backbone'"));
  EXPECT_FALSE(repository->Get("head_a").ok());
}

}  // namespace
}  // namespace audiotag
