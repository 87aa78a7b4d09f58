#include "src/model/model_repository.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/model/model_loader.h"
#include "tests/model/test_models.h"

namespace audiotag {
namespace {

namespace fs = std::filesystem;

using ::audiotag::testing::MakeTempDir;
using ::audiotag::testing::SaveScriptModule;
using ::audiotag::testing::WaveformConfig;
using ::audiotag::testing::WriteModelFolder;
using ::audiotag::testing::WriteTextFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kIdentity[] = "def forward(self, x):\n  return x\n";
// Scores the identity model's [B, 4] input as a 4-label tagger.
const std::string kTagsConfig =
    WaveformConfig(4,
                   "output { name: \"tags\" kind: TAGS dim: 4 }\n"
                   "batching { max_batch_size: 2 max_queue_delay_us: 100 }\n");
const std::string kEmbeddingConfig =
    WaveformConfig(4, "output { name: \"emb\" kind: EMBEDDING dim: 4 }\n");

// Returns x + `offset`, so a test can tell versions apart.
std::string AddOffset(int offset) {
  return absl::StrCat("def forward(self, x):\n  return x + ", offset, ".0\n");
}

std::unique_ptr<ModelRepository> OpenOrDie(const std::string& root) {
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Open({.root = root});
  EXPECT_TRUE(repository.ok()) << repository.status();
  return repository.ok() ? *std::move(repository) : nullptr;
}

v1::ModelState StateOf(const ModelRepository& repository,
                       const std::string& name) {
  absl::StatusOr<v1::ModelInfo> info = repository.Describe(name);
  return info.ok() ? info->state() : v1::MODEL_STATE_UNKNOWN;
}

std::string ReasonOf(const ModelRepository& repository,
                     const std::string& name) {
  absl::StatusOr<v1::ModelInfo> info = repository.Describe(name);
  return info.ok() ? info->state_reason() : "";
}

// Runs one segment through `model`'s scheduler and returns its outputs.
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

TEST(ModelRepository, OpenMissingRootIsNotFound) {
  EXPECT_EQ(
      ModelRepository::Open({.root = "/nonexistent/models"}).status().code(),
      absl::StatusCode::kNotFound);
}

TEST(ModelRepository, LoadsAndServesAModel) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "tagger", kTagsConfig, 4, 1, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);

  absl::StatusOr<std::shared_ptr<const Model>> model =
      repository->Get("tagger");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->name(), "tagger");
  EXPECT_EQ((*model)->version(), 1);
  EXPECT_THAT((*model)->labels(0), ElementsAre("l0", "l1", "l2", "l3"));

  absl::StatusOr<std::vector<Tensor>> out = RunOne(**model, {1, 2, 3, 4});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_THAT((*out)[0].data, ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(repository->ReadyModels().size(), 1u);
}

TEST(ModelRepository, DescribeFillsModelInfo) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "tagger", kTagsConfig, 4, 3, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  absl::StatusOr<v1::ModelInfo> info = repository->Describe("tagger");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state(), v1::READY);
  EXPECT_EQ(info->version(), 3);
  EXPECT_EQ(info->sample_rate(), 16000);
  EXPECT_DOUBLE_EQ(info->segment_seconds(), 4.0 / 16000);
  EXPECT_DOUBLE_EQ(info->hop_seconds(), 4.0 / 16000);
  ASSERT_EQ(info->outputs_size(), 1);
  EXPECT_EQ(info->outputs(0).name(), "tags");
  EXPECT_EQ(info->outputs(0).kind(), v1::TAGS);
  EXPECT_EQ(info->outputs(0).dim(), 4);
  EXPECT_THAT(info->outputs(0).labels(), ElementsAre("l0", "l1", "l2", "l3"));
  EXPECT_EQ(info->config().batching().max_queue_size(), 4096);
  EXPECT_EQ(repository->Describe("nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ModelRepository, CorruptModelFailsWhileGoodModelServes) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "good", kEmbeddingConfig, 0, 1, kIdentity);
  WriteTextFile(root + "/bad/config.pbtxt", kEmbeddingConfig);
  WriteTextFile(root + "/bad/1/model.pt", "PK\x03\x04 random garbage bytes");
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);

  EXPECT_EQ(StateOf(*repository, "good"), v1::READY);
  EXPECT_EQ(StateOf(*repository, "bad"), v1::FAILED);
  EXPECT_THAT(ReasonOf(*repository, "bad"), HasSubstr("bad/1/model.pt"));

  std::vector<v1::ModelInfo> list = repository->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name(), "bad");
  EXPECT_EQ(list[1].name(), "good");

  absl::StatusOr<std::shared_ptr<const Model>> bad = repository->Get("bad");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("model 'bad' is not ready: "));
  EXPECT_TRUE(repository->Get("good").ok());
}

TEST(ModelRepository, GetUnknownModelListsAvailableOnes) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "b", kEmbeddingConfig, 0, 1, kIdentity);
  WriteModelFolder(root, "a", kEmbeddingConfig, 0, 1, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  absl::StatusOr<std::shared_ptr<const Model>> model = repository->Get("x");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(model.status().message(), "unknown model 'x'; available: a, b");
}

TEST(ModelRepository, ConfigErrorNamesFileAndLine) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "typo",
                   kEmbeddingConfig + "\nbatching { max_batch: 2 }\n", 0, 1,
                   kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  EXPECT_EQ(StateOf(*repository, "typo"), v1::FAILED);
  const std::string reason = ReasonOf(*repository, "typo");
  EXPECT_THAT(reason, HasSubstr("typo/config.pbtxt:"));
  EXPECT_THAT(reason, HasSubstr("max_batch"));
}

TEST(ModelRepository, ValidationErrorNamesFileAndField) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", "name: \"other\"\n" + kEmbeddingConfig, 0, 1,
                   kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  EXPECT_THAT(ReasonOf(*repository, "m"), HasSubstr("m/config.pbtxt: name"));
}

TEST(ModelRepository, LabelsCountMismatchFails) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kTagsConfig, 3, 1, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  EXPECT_EQ(StateOf(*repository, "m"), v1::FAILED);
  EXPECT_THAT(
      ReasonOf(*repository, "m"),
      HasSubstr("labels.txt: has 3 labels but output 'tags' has dim 4"));
}

TEST(ModelRepository, MissingVersionFolderFails) {
  const std::string root = MakeTempDir("repo");
  WriteTextFile(root + "/m/config.pbtxt", kEmbeddingConfig);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  EXPECT_EQ(StateOf(*repository, "m"), v1::FAILED);
  EXPECT_THAT(ReasonOf(*repository, "m"), HasSubstr("no version folder"));
}

TEST(ModelRepository, ServesHighestVersionByDefault) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 2, AddOffset(2));
  SaveScriptModule(root + "/m/10/model.pt", AddOffset(10));
  SaveScriptModule(root + "/m/9/model.pt", AddOffset(9));
  fs::create_directories(root + "/m/not_a_version");
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  absl::StatusOr<std::shared_ptr<const Model>> model = repository->Get("m");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->version(), 10);
  absl::StatusOr<std::vector<Tensor>> out = RunOne(**model, {0, 0, 0, 0});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT((*out)[0].data, ElementsAre(10, 10, 10, 10));
}

TEST(ModelRepository, ServesPinnedVersion) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m",
                   kEmbeddingConfig + "version_policy { version: 2 }", 0, 2,
                   AddOffset(2));
  SaveScriptModule(root + "/m/3/model.pt", AddOffset(3));
  WriteModelFolder(root, "p",
                   kEmbeddingConfig + "version_policy { version: 7 }", 0, 1,
                   kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  absl::StatusOr<std::shared_ptr<const Model>> model = repository->Get("m");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->version(), 2);
  EXPECT_EQ(StateOf(*repository, "p"), v1::FAILED);
  EXPECT_THAT(ReasonOf(*repository, "p"), HasSubstr("version_policy.version"));
}

TEST(ModelRepository, RescanPicksUpNewAndRemovedModels) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "a", kEmbeddingConfig, 0, 1, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  EXPECT_EQ(repository->Get("b").status().code(), absl::StatusCode::kNotFound);

  WriteModelFolder(root, "b", kEmbeddingConfig, 0, 1, kIdentity);
  repository->Rescan();
  EXPECT_TRUE(repository->Get("b").ok());

  absl::StatusOr<std::shared_ptr<const Model>> held = repository->Get("a");
  ASSERT_TRUE(held.ok());
  fs::remove_all(root + "/a");
  repository->Rescan();
  EXPECT_EQ(repository->Get("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repository->List().size(), 1u);
  // A request that still holds the removed model can finish with it.
  EXPECT_TRUE(RunOne(**held, {1, 1, 1, 1}).ok());
}

TEST(ModelRepository, RescanSwapsInANewVersion) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 1, AddOffset(1));
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  absl::StatusOr<std::shared_ptr<const Model>> old = repository->Get("m");
  ASSERT_TRUE(old.ok());

  SaveScriptModule(root + "/m/2/model.pt", AddOffset(2));
  repository->Rescan();
  absl::StatusOr<std::shared_ptr<const Model>> current = repository->Get("m");
  ASSERT_TRUE(current.ok());
  EXPECT_EQ((*current)->version(), 2);
  EXPECT_THAT(RunOne(**current, {0, 0, 0, 0})->at(0).data,
              ElementsAre(2, 2, 2, 2));
  // The old version keeps serving the request that holds it.
  EXPECT_THAT(RunOne(**old, {0, 0, 0, 0})->at(0).data, ElementsAre(1, 1, 1, 1));
}

TEST(ModelRepository, FailedNewVersionKeepsOldOneServing) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 1, AddOffset(1));
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);

  WriteTextFile(root + "/m/2/model.pt", "garbage");
  // The first scan waits for a model.pt without a zip end record (it may be
  // half-written); the next one, seeing it unchanged, loads it and fails.
  repository->Rescan();
  repository->Rescan();
  absl::StatusOr<std::shared_ptr<const Model>> model = repository->Get("m");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->version(), 1);
  EXPECT_EQ(StateOf(*repository, "m"), v1::READY);
  EXPECT_THAT(ReasonOf(*repository, "m"),
              HasSubstr("version 2 failed to load; still serving version 1"));

  // Fixing the file brings version 2 in.
  SaveScriptModule(root + "/m/2/model.pt", AddOffset(2));
  repository->Rescan();
  model = repository->Get("m");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->version(), 2);
  EXPECT_EQ(ReasonOf(*repository, "m"), "");
}

TEST(ModelRepository, RescanRetriesAFixedModel) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kTagsConfig, 3, 1, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  EXPECT_EQ(StateOf(*repository, "m"), v1::FAILED);
  WriteTextFile(root + "/m/labels.txt", "a\nb\nc\nd\n");
  repository->Rescan();
  EXPECT_EQ(StateOf(*repository, "m"), v1::READY);
}

TEST(ModelRepository, StopStopsSchedulers) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 1, kIdentity);
  auto repository = OpenOrDie(root);
  ASSERT_NE(repository, nullptr);
  absl::StatusOr<std::shared_ptr<const Model>> model = repository->Get("m");
  ASSERT_TRUE(model.ok());
  repository->Stop();
  EXPECT_EQ(RunOne(**model, {0, 0, 0, 0}).status().code(),
            absl::StatusCode::kUnavailable);
  repository.reset();  // the model outlives the repository
  EXPECT_EQ((*model)->name(), "m");
}

// Stop from many threads at once, then again: every call returns with the
// poller joined and the schedulers stopped, none crashes (absl::Notification
// aborts on a second Notify; a std::thread joined twice throws).
TEST(ModelRepository, StopIsSafeFromManyThreadsAtOnce) {
  const std::string root = MakeTempDir("repo");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 1, kIdentity);
  // Rounds widen the window for a race; the model is loaded once.
  for (int round = 0; round < 20; ++round) {
    absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
        ModelRepository::Open(
            {.root = root, .poll_interval = absl::Milliseconds(1)});
    ASSERT_TRUE(repository.ok()) << repository.status();
    absl::StatusOr<std::shared_ptr<const Model>> model =
        (*repository)->Get("m");
    ASSERT_TRUE(model.ok()) << model.status();
    absl::Notification go;
    std::vector<std::thread> stoppers;
    for (int i = 0; i < 8; ++i) {
      stoppers.emplace_back([&] {
        go.WaitForNotification();
        (*repository)->Stop();
        // Returned: everything is stopped, whichever thread did it.
        EXPECT_EQ(RunOne(**model, {0, 0, 0, 0}).status().code(),
                  absl::StatusCode::kUnavailable);
      });
    }
    go.Notify();
    for (std::thread& t : stoppers) t.join();
    (*repository)->Stop();
    (*repository)->Stop();
    EXPECT_EQ(RunOne(**model, {0, 0, 0, 0}).status().code(),
              absl::StatusCode::kUnavailable);
  }
}

TEST(ModelRepository, PollingPicksUpNewModels) {
  const std::string root = MakeTempDir("repo");
  absl::StatusOr<std::unique_ptr<ModelRepository>> repository =
      ModelRepository::Open(
          {.root = root, .poll_interval = absl::Milliseconds(50)});
  ASSERT_TRUE(repository.ok()) << repository.status();
  WriteModelFolder(root, "late", kEmbeddingConfig, 0, 1, kIdentity);
  for (int i = 0; i < 200 && !(*repository)->Get("late").ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE((*repository)->Get("late").ok());
}

// Copies the first half of a valid model.pt to `path`, as a copy in progress
// would leave it.
void WriteHalfOf(const std::string& valid, const std::string& path) {
  std::ifstream in(valid, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)),
                    std::istreambuf_iterator<char>());
  WriteTextFile(path, bytes.substr(0, bytes.size() / 2));
}

TEST(ModelLoader, RecognisesACompleteTorchScriptZip) {
  const std::string root = MakeTempDir("models");
  SaveScriptModule(root + "/full.pt", kIdentity);
  WriteHalfOf(root + "/full.pt", root + "/half.pt");
  WriteTextFile(root + "/text.pt", "not a zip");
  EXPECT_TRUE(LooksLikeCompleteZip(root + "/full.pt"));
  EXPECT_FALSE(LooksLikeCompleteZip(root + "/half.pt"));
  EXPECT_FALSE(LooksLikeCompleteZip(root + "/text.pt"));
  EXPECT_FALSE(LooksLikeCompleteZip(root + "/missing.pt"));
}

TEST(ModelRepository, WaitsForAHalfWrittenVersionInsteadOfFailingIt) {
  const std::string root = MakeTempDir("models");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 1, AddOffset(1));
  auto repository = OpenOrDie(root);
  SaveScriptModule(root + "/full.pt", AddOffset(2));
  WriteHalfOf(root + "/full.pt", root + "/m/2/model.pt");

  repository->Rescan();
  EXPECT_EQ(StateOf(*repository, "m"), v1::READY);
  EXPECT_EQ((*repository->Get("m"))->version(), 1);
  EXPECT_THAT(ReasonOf(*repository, "m"), HasSubstr("looks incomplete"));
  EXPECT_THAT(ReasonOf(*repository, "m"), Not(HasSubstr("failed")));

  fs::copy_file(root + "/full.pt", root + "/m/2/model.pt",
                fs::copy_options::overwrite_existing);
  repository->Rescan();
  EXPECT_EQ((*repository->Get("m"))->version(), 2);
  EXPECT_EQ(ReasonOf(*repository, "m"), "");
}

TEST(ModelRepository, ACorruptVersionThatStaysCorruptFailsOnTheNextScan) {
  const std::string root = MakeTempDir("models");
  WriteModelFolder(root, "m", kEmbeddingConfig, 0, 1, AddOffset(1));
  auto repository = OpenOrDie(root);
  WriteTextFile(root + "/m/2/model.pt", "garbage, not a zip");
  repository->Rescan();
  EXPECT_THAT(ReasonOf(*repository, "m"), HasSubstr("looks incomplete"));
  repository->Rescan();
  EXPECT_THAT(ReasonOf(*repository, "m"),
              HasSubstr("version 2 failed to load; still serving version 1"));
  EXPECT_EQ((*repository->Get("m"))->version(), 1);
}

}  // namespace
}  // namespace audiotag
