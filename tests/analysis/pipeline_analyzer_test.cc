// The analyzer running pipelines (src/analysis/run_plan.cc and the stage side
// of model_run.cc) against real TorchScript models: shared sources run once
// per segment, stages get their source's outputs, and only requested models
// are returned.
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/analysis/analyzer.h"
#include "src/model/model_repository.h"
#include "tests/model/test_models.h"
#include "tests/testutil/audio_files.h"

namespace audiotag {
namespace {

using ::audiotag::testing::MakeTempDir;

// Counts segments per model through the repository's batch observer.
class SegmentCounter {
 public:
  void Add(const std::string& model, int n) {
    absl::MutexLock lock(&mu_);
    counts_[model] += n;
  }
  int Get(const std::string& model) {
    absl::MutexLock lock(&mu_);
    return counts_[model];
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
};

class PipelineAnalyzerTest : public ::testing::Test {
 protected:
  void Open(const std::string& root) {
    RepositoryOptions options;
    options.root = root;
    options.on_batch = [this](const std::string& model, const BatchStats& s) {
      counter_.Add(model, s.batch_size);
    };
    auto repository = ModelRepository::Open(options);
    ASSERT_TRUE(repository.ok()) << repository.status();
    repository_ = *std::move(repository);
    // Warm-up batches go through the runners, not the batcher: nothing yet.
    analyzer_ =
        std::make_unique<Analyzer>(repository_.get(), AnalyzerOptions());
  }

  absl::StatusOr<v1::AnalyzeResponse> Analyze(
      const std::vector<std::string>& models, double seconds) {
    testing::AudioSpec spec;
    spec.seconds = seconds;
    absl::StatusOr<std::string> audio = testing::MakeAudioFile(spec);
    if (!audio.ok()) return audio.status();
    v1::AnalyzeOptions options;
    for (const std::string& m : models) options.add_models(m);
    options.mutable_outputs()->set_segment_embeddings(true);
    options.mutable_outputs()->set_tags(true);
    options.set_top_k(-1);
    return analyzer_->Analyze(
        *audio, options,
        std::make_shared<RequestControl>(1, Priority::kInteractive,
                                         absl::InfiniteFuture()));
  }

  SegmentCounter counter_;
  std::unique_ptr<ModelRepository> repository_;
  std::unique_ptr<Analyzer> analyzer_;
};

const v1::OutputResult& Output(const v1::AnalyzeResponse& response,
                               const std::string& model) {
  for (const v1::ModelResult& r : response.results()) {
    if (r.model() == model) return r.outputs(0);
  }
  ADD_FAILURE() << "no result for " << model;
  static const v1::OutputResult* const kEmpty = new v1::OutputResult();
  return *kEmpty;
}

TEST_F(PipelineAnalyzerTest, SharedBackboneRunsOncePerSegmentForTwoHeads) {
  const std::string root = MakeTempDir("models");
  testing::WriteBackboneAndHeads(root);
  Open(root);
  absl::StatusOr<v1::AnalyzeResponse> response =
      Analyze({"head_a", "head_b"}, 3.0);
  ASSERT_TRUE(response.ok()) << response.status();

  ASSERT_EQ(response->results_size(), 2);  // the backbone is not returned
  EXPECT_EQ(response->results(0).model(), "head_a");
  EXPECT_EQ(response->results(1).model(), "head_b");
  EXPECT_EQ(response->results(0).num_segments(), 3);
  EXPECT_DOUBLE_EQ(response->results(0).segment_seconds(), 1.0);
  EXPECT_EQ(counter_.Get("backbone"), 3);
  EXPECT_EQ(counter_.Get("head_a"), 3);
  EXPECT_EQ(counter_.Get("head_b"), 3);

  // A 0.5-amplitude sine: max 0.5, rms 0.5 / sqrt(2).
  const double max = 0.5, rms = 0.5 / std::sqrt(2.0);
  const v1::OutputResult& a = Output(*response, "head_a");
  ASSERT_EQ(a.segments_size(), 3);
  for (const v1::SegmentEmbedding& s : a.segments()) {
    EXPECT_NEAR(s.values(0), max + 2 * rms, 2e-3);
    EXPECT_NEAR(s.values(1), 3 * max - rms, 2e-3);
  }
  const v1::OutputResult& b = Output(*response, "head_b");
  ASSERT_EQ(b.tags_size(), 2);         // -max is below the 0 threshold
  EXPECT_EQ(b.tags(0).label(), "l2");  // max + rms is the largest
  EXPECT_NEAR(b.tags(0).score(), max + rms, 2e-3);
}

TEST_F(PipelineAnalyzerTest, RequestedSourceAndStageShareOneRun) {
  const std::string root = MakeTempDir("models");
  testing::WriteBackboneAndHeads(root);
  Open(root);
  absl::StatusOr<v1::AnalyzeResponse> response =
      Analyze({"head_a", "backbone"}, 2.0);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 2);
  EXPECT_EQ(counter_.Get("backbone"), 2);
  const v1::OutputResult& e = Output(*response, "backbone");
  const v1::OutputResult& a = Output(*response, "head_a");
  ASSERT_EQ(e.segments_size(), 2);
  ASSERT_EQ(a.segments_size(), 2);
  for (int s = 0; s < 2; ++s) {
    const auto& x = e.segments(s).values();
    EXPECT_NEAR(a.segments(s).values(0), x[0] + 2 * x[1], 1e-5);
    EXPECT_NEAR(a.segments(s).values(1), 3 * x[0] - x[1], 1e-5);
  }
}

TEST_F(PipelineAnalyzerTest, ReprogrammingChainMatchesTheSingleModel) {
  const std::string root = MakeTempDir("models");
  testing::WriteReprogrammingChain(root);
  Open(root);
  absl::StatusOr<v1::AnalyzeResponse> response =
      Analyze({"mapping", "reference"}, 2.5);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->results_size(), 2);
  EXPECT_EQ(counter_.Get("transform"), 3);
  EXPECT_EQ(counter_.Get("frozen"), 3);
  const v1::OutputResult& chain = Output(*response, "mapping");
  const v1::OutputResult& reference = Output(*response, "reference");
  ASSERT_EQ(chain.segments_size(), 3);
  ASSERT_EQ(reference.segments_size(), 3);
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(chain.segments(s).values(i), reference.segments(s).values(i),
                  1e-4);
    }
  }
  EXPECT_NEAR(chain.pooled().values(0), reference.pooled().values(0), 1e-4);
  EXPECT_GT(std::abs(chain.pooled().values(0)), 0.1);
}

}  // namespace
}  // namespace audiotag
