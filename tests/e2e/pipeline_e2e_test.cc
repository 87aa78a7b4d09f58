// Pipelines served by the real audiotag-server: a backbone feeding two heads
// (the backbone runs once per segment, counted with the server's Prometheus
// batch-size metric) and a three-stage reprogramming chain, both checked
// numerically.
#include <cmath>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/e2e/e2e_metrics.h"
#include "tests/model/test_models.h"
#include "tests/testutil/audio_files.h"

namespace audiotag::testing {
namespace {

std::string SineAudio(double seconds) {
  AudioSpec spec;
  spec.seconds = seconds;
  absl::StatusOr<std::string> audio = MakeAudioFile(spec);
  EXPECT_TRUE(audio.ok()) << audio.status();
  return audio.ok() ? *audio : "";
}

v1::AnalyzeOptions Request(std::initializer_list<const char*> models) {
  v1::AnalyzeOptions options;
  for (const char* m : models) options.add_models(m);
  options.mutable_outputs()->set_tags(true);
  options.mutable_outputs()->set_segment_embeddings(true);
  options.set_top_k(-1);
  return options;
}

// The sample `series` once the server has published a value for it.
double AwaitMetric(int port, const std::string& series) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (auto v = MetricValue(ScrapeMetricsText(port), series)) return *v;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ADD_FAILURE() << "no metric " << series;
  return -1;
}

TEST(PipelineE2E, BackboneRunsOncePerSegmentForTwoHeads) {
  const std::string root = NewTempDir("pipeline-models");
  WriteBackboneAndHeads(root);
  const int metrics_port = PickFreePort();
  auto server = ServerProcess::Start(
      root, {absl::StrCat("--metrics_port=", metrics_port)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());

  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(*stub, SineAudio(4.0),
                                    Request({"head_a", "head_b"}), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 2);  // the backbone is not returned
  EXPECT_EQ(FindResult(response, "backbone"), nullptr);

  const double max = 0.5, rms = 0.5 / std::sqrt(2.0);
  const v1::ModelResult* a = FindResult(response, "head_a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->num_segments(), 4);
  const v1::OutputResult* out = FindOutput(*a, "out");
  ASSERT_NE(out, nullptr);
  ASSERT_EQ(out->segments_size(), 4);
  for (const v1::SegmentEmbedding& s : out->segments()) {
    EXPECT_NEAR(s.values(0), max + 2 * rms, 2e-3);
    EXPECT_NEAR(s.values(1), 3 * max - rms, 2e-3);
  }
  const v1::ModelResult* b = FindResult(response, "head_b");
  ASSERT_NE(b, nullptr);
  const v1::OutputResult* scores = FindOutput(*b, "scores");
  ASSERT_NE(scores, nullptr);
  ASSERT_EQ(scores->tags_size(), 2);  // -max is below the 0 threshold
  EXPECT_EQ(scores->tags(0).label(), "l2");
  EXPECT_NEAR(scores->tags(0).score(), max + rms, 2e-3);
  EXPECT_NEAR(scores->tags(1).score(), rms, 2e-3);

  // 4 segments through the backbone, not 8: it ran once for both heads.
  EXPECT_EQ(
      AwaitMetric(metrics_port, "audiotag_batch_size_sum{model=\"backbone\"}"),
      4);
  EXPECT_EQ(
      AwaitMetric(metrics_port, "audiotag_batch_size_sum{model=\"head_a\"}"),
      4);
  EXPECT_EQ(
      AwaitMetric(metrics_port, "audiotag_batch_size_sum{model=\"head_b\"}"),
      4);
}

TEST(PipelineE2E, ReprogrammingChainMatchesTheSingleModel) {
  const std::string root = NewTempDir("reprogramming-models");
  WriteReprogrammingChain(root);
  auto server = ServerProcess::Start(root);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());

  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(
      *stub, SineAudio(3.0), Request({"mapping", "reference"}), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 2);
  const v1::ModelResult* chain = FindResult(response, "mapping");
  const v1::ModelResult* reference = FindResult(response, "reference");
  ASSERT_NE(chain, nullptr);
  ASSERT_NE(reference, nullptr);
  EXPECT_EQ(chain->version(), 1);
  const v1::OutputResult* c = FindOutput(*chain, "out");
  const v1::OutputResult* r = FindOutput(*reference, "out");
  ASSERT_NE(c, nullptr);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(c->segments_size(), 3);
  ASSERT_EQ(r->segments_size(), 3);
  for (int s = 0; s < 3; ++s) {
    EXPECT_NEAR(c->segments(s).values(0), r->segments(s).values(0), 1e-4);
    EXPECT_NEAR(c->segments(s).values(1), r->segments(s).values(1), 1e-4);
  }
  EXPECT_GT(std::abs(c->pooled().values(0)), 0.1);

  // GetModel shows the timing a stage inherits from its root model.
  grpc::ClientContext context;
  v1::GetModelRequest request;
  request.set_name("mapping");
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModel(&context, request, &info).ok());
  EXPECT_EQ(info.state(), v1::READY);
  EXPECT_EQ(info.sample_rate(), 16000);
  EXPECT_TRUE(info.config().input().has_from_model());
}

}  // namespace
}  // namespace audiotag::testing
