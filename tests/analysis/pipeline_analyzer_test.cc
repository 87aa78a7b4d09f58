// The analyzer running pipelines (src/analysis/run_plan.cc and the stage side
// of model_run.cc) against real TorchScript models: shared sources run once
// per segment, stages get their source's outputs (several sources' aligned
// by time), and only requested models are returned.
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
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

// 16-bit mono PCM WAV bytes of `samples` at `rate`.
std::string WavBytes(const std::vector<float>& samples, int rate) {
  std::string out;
  auto put = [&](uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      out.push_back(static_cast<char>(v >> 8 * i));
  };
  out += "RIFF";
  put(36 + 2 * samples.size(), 4);
  out += "WAVEfmt ";
  put(16, 4);
  put(1, 2);  // PCM
  put(1, 2);  // mono
  put(rate, 4);
  put(rate * 2, 4);
  put(2, 2);
  put(16, 2);
  out += "data";
  put(2 * samples.size(), 4);
  for (float x : samples) {
    put(static_cast<uint16_t>(static_cast<int16_t>(std::lround(x * 32767))), 2);
  }
  return out;
}

// Two backbones on different grids and rates, each embedding a segment as
// its mean sample, and an identity stage reading both: "wide" (16 kHz, 1 s
// windows every 0.5 s) is the primary, "narrow" (8 kHz, 0.35 s windows, no
// overlap) is aligned onto it.
// A waveform model at `rate` Hz whose EMBEDDING "embedding" is each
// segment's mean sample; `segment` is its segment config's inside.
void WriteMeanModel(const std::string& root, const std::string& name, int rate,
                    const std::string& segment) {
  testing::WriteModelFolder(
      root, name,
      absl::StrCat("input { sample_rate: ", rate, " waveform {} }\n",
                   "segment { ", segment, " }\n",
                   "batching { max_batch_size: 4 max_queue_delay_us: 500 }\n",
                   "output { name: \"embedding\" kind: EMBEDDING dim: 1 }\n"),
      0, 1, "def forward(self, x):\n    return x.mean(1, keepdim=True)\n");
}

// An identity stage on `first` and `second`'s embeddings.
void WriteJoined(const std::string& root, const std::string& name,
                 const std::string& first, const std::string& second) {
  testing::WriteModelFolder(
      root, name,
      absl::StrCat("input { from_models {\n  source { model: \"", first,
                   "\" output: \"embedding\" dim: 1 }\n  source { model: \"",
                   second,
                   "\" output: \"embedding\" }\n} }\n"
                   "output { name: \"both\" kind: EMBEDDING dim: 2 }\n"),
      0, 1, "def forward(self, x):\n    return x\n");
}

// Two backbones on different grids and rates, and an identity stage reading
// both: "wide" (16 kHz, 1 s windows every 0.5 s) is the primary, "narrow"
// (8 kHz, 0.35 s windows, no overlap) is aligned onto it.
void WriteTwoGrids(const std::string& root) {
  WriteMeanModel(root, "wide", 16000,
                 "window_samples: 16000 hop_samples: 8000");
  WriteMeanModel(root, "narrow", 8000, "window_samples: 2800");
  WriteJoined(root, "joined", "wide", "narrow");
}

TEST_F(PipelineAnalyzerTest, StageOnTwoGridsGetsTheNearestSegmentOfEach) {
  const std::string root = MakeTempDir("models");
  WriteTwoGrids(root);
  Open(root);
  // A ramp: a segment's mean tells where it lies.
  std::vector<float> ramp(16000 * 3.2);
  for (size_t i = 0; i < ramp.size(); ++i) {
    ramp[i] = -0.9f + 1.8f * static_cast<float>(i) / ramp.size();
  }
  v1::AnalyzeOptions options;
  for (const char* m : {"joined", "wide", "narrow"}) options.add_models(m);
  options.mutable_outputs()->set_segment_embeddings(true);
  absl::StatusOr<v1::AnalyzeResponse> response = analyzer_->Analyze(
      WavBytes(ramp, 16000), options,
      std::make_shared<RequestControl>(1, Priority::kInteractive,
                                       absl::InfiniteFuture()));
  ASSERT_TRUE(response.ok()) << response.status();
  const v1::OutputResult& joined = Output(*response, "joined");
  const v1::OutputResult& wide = Output(*response, "wide");
  const v1::OutputResult& narrow = Output(*response, "narrow");
  ASSERT_GE(wide.segments_size(), 6);
  ASSERT_GE(narrow.segments_size(), 9);
  // Each backbone ran once per segment of its own grid although its own
  // outputs were requested too; the stage once per primary segment.
  EXPECT_EQ(counter_.Get("wide"), wide.segments_size());
  EXPECT_EQ(counter_.Get("narrow"), narrow.segments_size());
  EXPECT_EQ(counter_.Get("joined"), wide.segments_size());
  // The stage has the primary's segments and times.
  ASSERT_EQ(joined.segments_size(), wide.segments_size());
  std::set<int> narrow_used;
  for (int k = 0; k < joined.segments_size(); ++k) {
    const v1::SegmentEmbedding& s = joined.segments(k);
    EXPECT_DOUBLE_EQ(s.start_seconds(), wide.segments(k).start_seconds());
    EXPECT_DOUBLE_EQ(s.end_seconds(), wide.segments(k).end_seconds());
    ASSERT_EQ(s.values_size(), 2);
    EXPECT_FLOAT_EQ(s.values(0), wide.segments(k).values(0)) << k;
    // The narrow segment whose window centre is nearest the wide one's,
    // found by brute force (the earlier on a tie).
    const double centre = 0.5 * k + 0.5;
    int nearest = 0;
    for (int j = 1; j < narrow.segments_size(); ++j) {
      if (std::abs(0.35 * j + 0.175 - centre) <
          std::abs(0.35 * nearest + 0.175 - centre) - 1e-9) {
        nearest = j;
      }
    }
    EXPECT_FLOAT_EQ(s.values(1), narrow.segments(nearest).values(0)) << k;
    narrow_used.insert(nearest);
  }
  // The alignment skipped narrow segments, and the ramp tells them apart.
  EXPECT_LT(narrow_used.size(), static_cast<size_t>(narrow.segments_size()));
  EXPECT_LT(narrow.segments(0).values(0), narrow.segments(1).values(0) - 0.1);
}

TEST_F(PipelineAnalyzerTest,
       StageOnTwoGridsFailsClearlyWhenASourceNeedsLongerAudio) {
  const std::string root = MakeTempDir("models");
  WriteTwoGrids(root);
  // A second source whose segments drop a partial one and are longer than
  // the audio; the primary still runs.
  WriteMeanModel(root, "long", 16000,
                 "window_samples: 64000 last_segment: LAST_SEGMENT_DROP");
  WriteJoined(root, "late", "narrow", "long");
  Open(root);
  // Explicitly requested: the error names the model.
  absl::StatusOr<v1::AnalyzeResponse> response = Analyze({"late"}, 2.0);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(response.status())) << response.status();
  EXPECT_THAT(std::string(response.status().message()),
              ::testing::HasSubstr("'long'"));
  // A second request still works: nothing was left behind.
  absl::StatusOr<v1::AnalyzeResponse> joined = Analyze({"joined"}, 2.0);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(Output(*joined, "joined").segments_size(), 3);
}

}  // namespace
}  // namespace audiotag
