// `audiotag bench --metrics_url` against the real server's /metrics
// endpoint: ReadHistograms (what bench calls before and after its load) sees
// the batches an Analyze call ran, and a wrong path is a clear error.

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/bench_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/e2e/e2e_metrics.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

constexpr char kFamily[] = "audiotag_batch_size";

TEST(BenchMetricsE2E, ReadsTheServersBatchSizeHistogram) {
  const std::string repository = NewTempDir("audiotag-bench-metrics");
  WriteStatsModel(repository, "stats");
  const int metrics_port = PickFreePort();
  auto server = ServerProcess::Start(
      repository, {absl::StrCat("--metrics_port=", metrics_port)});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = absl::StrCat("127.0.0.1:", metrics_port);

  absl::StatusOr<HistogramsByLabel> before =
      ReadHistograms(url, kFamily, "model", absl::Seconds(10));
  ASSERT_TRUE(before.ok()) << before.status();

  AudioSpec spec;
  spec.seconds = 3;
  absl::StatusOr<std::string> audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok()) << audio.status();
  auto stub = MakeStub((*server)->address());
  v1::AnalyzeOptions options;
  options.add_models("stats");
  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(*stub, *audio, options, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.results_size(), 1);
  const int64_t segments = response.results(0).num_segments();
  ASSERT_GT(segments, 0);

  absl::StatusOr<HistogramsByLabel> after =
      ReadHistograms(url, kFamily, "model", absl::Seconds(10));
  ASSERT_TRUE(after.ok()) << after.status();
  const HistogramsByLabel delta = HistogramDelta(*after, *before);
  ASSERT_TRUE(delta.contains("stats")) << "no stats series at " << url;
  const Histogram& stats = delta.at("stats");
  // Every segment of the call ran in some batch of this model.
  EXPECT_EQ(stats.sum, segments);
  EXPECT_GE(stats.count, 1);
  EXPECT_LE(stats.count, segments);
  double bucketed = 0;
  for (const auto& [le, n] : BucketCounts(stats)) bucketed += n;
  EXPECT_EQ(bucketed, stats.count);

  // A path the endpoint does not serve: UNAVAILABLE quoting the status line.
  absl::StatusOr<HistogramsByLabel> wrong = ReadHistograms(
      absl::StrCat(url, "/nothing"), kFamily, "model", absl::Seconds(10));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(wrong.status().message(), ::testing::HasSubstr("404"));
}

}  // namespace
}  // namespace audiotag::testing
