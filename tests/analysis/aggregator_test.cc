#include "src/analysis/aggregator.h"

#include <memory>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;
using ::testing::Pointwise;

// A model with a TAGS, an ACTIVATIONS and an EMBEDDING output, 1 s segments at
// 10 Hz (window 10 samples) with a hop of 0.5 s. No scheduler: Aggregate
// never runs the model.
std::unique_ptr<Model> MakeModel() {
  v1::ModelConfig config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        name: "m"
        input {
          sample_rate: 10
          waveform {}
        }
        segment { window_samples: 10 hop_samples: 5 }
        output { name: "tags" kind: TAGS dim: 3 }
        output { name: "act" kind: ACTIVATIONS dim: 3 }
        output { name: "emb" kind: EMBEDDING dim: 2 }
      )pb",
      &config));
  std::vector<std::vector<std::string>> labels = {
      {"a", "b", "c"}, {"a", "b", "c"}, {}};
  return std::make_unique<Model>(config, 7, labels, nullptr);
}

Tensor T(std::vector<int64_t> shape, std::vector<float> data) {
  return Tensor{std::move(shape), std::move(data)};
}

TEST(Aggregator, PoolsTagsAndRanksTopK) {
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}, {5, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0.1, 0.9, 0.5}), T({3}, {1, 2, 3}), T({2}, {1, 2})},
      {T({3}, {0.3, 0.5, 0.9}), T({3}, {4, 5, 6}), T({2}, {3, 4})}};
  AggregationOptions options;
  options.top_k = 2;
  options.segment_embeddings = true;
  auto result = Aggregate(*model, spans, outputs, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->version(), 7);
  EXPECT_EQ(result->num_segments(), 2);
  EXPECT_DOUBLE_EQ(result->hop_seconds(), 0.5);
  const v1::OutputResult& tags = result->outputs(0);
  ASSERT_EQ(tags.tags_size(), 2);
  EXPECT_EQ(tags.tags(0).label(), "b");  // mean 0.7
  EXPECT_FLOAT_EQ(tags.tags(0).score(), 0.7f);
  EXPECT_EQ(tags.tags(1).label(),
            "c");  // mean 0.7 too; stable order keeps b first
  const v1::OutputResult& act = result->outputs(1);
  ASSERT_EQ(act.frames_size(), 2);
  EXPECT_DOUBLE_EQ(act.frames(1).start_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(act.frames(1).end_seconds(), 1.5);
  EXPECT_THAT(act.frames(1).scores(), ElementsAre(4, 5, 6));
  EXPECT_THAT(act.labels(), ElementsAre("a", "b", "c"));
  const v1::OutputResult& emb = result->outputs(2);
  EXPECT_THAT(emb.pooled().values(), ElementsAre(2, 3));
  ASSERT_EQ(emb.segments_size(), 2);
  EXPECT_THAT(emb.segments(0).values(), ElementsAre(1, 2));
}

TEST(Aggregator, MaxPoolingAndThreshold) {
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}, {5, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0.1, 0.9, 0.2}), T({3}, {0, 0, 0}), T({2}, {1, -2})},
      {T({3}, {0.3, 0.5, 0.25}), T({3}, {0, 0, 0}), T({2}, {-3, 4})}};
  AggregationOptions options;
  options.pooling = v1::POOLING_MAX;
  options.top_k = -1;
  options.threshold = 0.28f;
  auto result = Aggregate(*model, spans, outputs, options);
  ASSERT_TRUE(result.ok());
  const v1::OutputResult& tags = result->outputs(0);
  ASSERT_EQ(tags.tags_size(), 2);  // c's max 0.25 is under the threshold
  EXPECT_EQ(tags.tags(0).label(), "b");
  EXPECT_EQ(tags.tags(1).label(), "a");
  EXPECT_THAT(result->outputs(2).pooled().values(), ElementsAre(1, 4));
}

TEST(Aggregator, PaddedTailCountsForTheAudioItHolds) {
  auto model = MakeModel();
  // The second segment holds 1 real sample of 10.
  std::vector<SegmentSpan> spans = {{0, 10}, {5, 1}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {1, 1, 1}), T({3}, {0, 0, 0}), T({2}, {1, 1})},
      {T({3}, {0, 0, 0}), T({3}, {0, 0, 0}), T({2}, {0, 0})}};
  auto result = Aggregate(*model, spans, outputs, AggregationOptions());
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->outputs(2).pooled().values(),
              Pointwise(FloatNear(1e-5), {1 / 1.1f, 1 / 1.1f}));
}

TEST(Aggregator, FrameWiseActivationsSplitTheSegment) {
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0, 0, 0}), T({2, 3}, {1, 2, 3, 4, 5, 6}), T({2}, {0, 0})}};
  auto result = Aggregate(*model, spans, outputs, AggregationOptions());
  ASSERT_TRUE(result.ok());
  const v1::OutputResult& act = result->outputs(1);
  ASSERT_EQ(act.frames_size(), 2);
  EXPECT_DOUBLE_EQ(act.frames(0).end_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(act.frames(1).start_seconds(), 0.5);
  EXPECT_THAT(act.frames(1).scores(), ElementsAre(4, 5, 6));
}

TEST(Aggregator, PaddedLastSegmentEndsAtTheEndOfTheClip) {
  // 1.3 s of audio at 10 Hz, 1 s windows, hop 1 s: [0, 1] and the padded
  // [1, 1.3] (3 real samples), not [1, 2].
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}, {10, 3}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0, 0, 0}), T({3}, {1, 1, 1}), T({2}, {1, 1})},
      {T({3}, {0, 0, 0}), T({3}, {2, 2, 2}), T({2}, {2, 2})}};
  AggregationOptions options;
  options.segment_embeddings = true;
  auto result = Aggregate(*model, spans, outputs, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::OutputResult& act = result->outputs(1);
  ASSERT_EQ(act.frames_size(), 2);
  EXPECT_DOUBLE_EQ(act.frames(1).start_seconds(), 1.0);
  EXPECT_DOUBLE_EQ(act.frames(1).end_seconds(), 1.3);
  const v1::OutputResult& emb = result->outputs(2);
  ASSERT_EQ(emb.segments_size(), 2);
  EXPECT_DOUBLE_EQ(emb.segments(0).end_seconds(), 1.0);
  EXPECT_DOUBLE_EQ(emb.segments(1).start_seconds(), 1.0);
  EXPECT_DOUBLE_EQ(emb.segments(1).end_seconds(), 1.3);
}

TEST(Aggregator, FramesInThePaddingAreLeftOutAndTheLastOneIsCut) {
  // One padded 1 s segment holding 0.6 s of audio, 4 frames of 0.25 s:
  // [0, .25], [.25, .5], [.5, .6]; the fourth lies wholly in the padding.
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 6}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0, 0, 0}), T({4, 3}, {1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4}),
       T({2}, {0, 0})}};
  auto result = Aggregate(*model, spans, outputs, AggregationOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::OutputResult& act = result->outputs(1);
  ASSERT_EQ(act.frames_size(), 3);
  EXPECT_DOUBLE_EQ(act.frames(1).end_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(act.frames(2).start_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(act.frames(2).end_seconds(), 0.6);
  EXPECT_THAT(act.frames(2).scores(), ElementsAre(3, 3, 3));
}

TEST(Aggregator, CentredWindowsReportTheAudioTheyCover) {
  // Centred 1 s windows, hop 0.5 s, over 1.2 s of audio: the segmenter's
  // starts are -0.5, 0 and 0.5 s; reported as [0, .5], [0, 1], [.5, 1.2].
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{-5, 5}, {0, 10}, {5, 7}};
  std::vector<std::vector<Tensor>> outputs(
      3, {T({3}, {0, 0, 0}), T({3}, {0, 0, 0}), T({2}, {0, 0})});
  AggregationOptions options;
  options.segment_embeddings = true;
  auto result = Aggregate(*model, spans, outputs, options);
  ASSERT_TRUE(result.ok()) << result.status();
  const v1::OutputResult& emb = result->outputs(2);
  ASSERT_EQ(emb.segments_size(), 3);
  EXPECT_DOUBLE_EQ(emb.segments(0).start_seconds(), 0.0);
  EXPECT_DOUBLE_EQ(emb.segments(0).end_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(emb.segments(1).start_seconds(), 0.0);
  EXPECT_DOUBLE_EQ(emb.segments(1).end_seconds(), 1.0);
  EXPECT_DOUBLE_EQ(emb.segments(2).start_seconds(), 0.5);
  EXPECT_DOUBLE_EQ(emb.segments(2).end_seconds(), 1.2);
}

TEST(Aggregator, WrongOutputSizeIsInternal) {
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({4}, {0, 0, 0, 0}), T({3}, {0, 0, 0}), T({2}, {0, 0})}};
  auto result = Aggregate(*model, spans, outputs, AggregationOptions());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("'tags'"));
}

// Each kind fills only the fields of its Report: TAGS the ranked tags,
// ACTIVATIONS the timeline and labels (nothing pooled), EMBEDDING the pooled
// vector (and the per-segment ones only when asked).
TEST(Aggregator, EachKindFillsOnlyItsOwnFields) {
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}, {5, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {1, 2, 3}), T({3}, {1, 2, 3}), T({2}, {1, 2})},
      {T({3}, {3, 2, 1}), T({3}, {3, 2, 1}), T({2}, {3, 4})}};
  auto result = Aggregate(*model, spans, outputs, AggregationOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->outputs_size(), 3);
  const v1::OutputResult& tags = result->outputs(0);
  EXPECT_EQ(tags.kind(), v1::TAGS);
  EXPECT_EQ(tags.tags_size(), 3);
  EXPECT_EQ(tags.frames_size(), 0);
  EXPECT_EQ(tags.labels_size(), 0);
  EXPECT_FALSE(tags.has_pooled());
  const v1::OutputResult& act = result->outputs(1);
  EXPECT_EQ(act.kind(), v1::ACTIVATIONS);
  EXPECT_EQ(act.tags_size(), 0);
  EXPECT_EQ(act.frames_size(), 2);
  EXPECT_EQ(act.labels_size(), 3);
  EXPECT_FALSE(act.has_pooled());
  const v1::OutputResult& emb = result->outputs(2);
  EXPECT_EQ(emb.kind(), v1::EMBEDDING);
  EXPECT_EQ(emb.tags_size(), 0);
  EXPECT_EQ(emb.frames_size(), 0);
  EXPECT_EQ(emb.segments_size(), 0);  // segment_embeddings not asked
  EXPECT_THAT(emb.pooled().values(), ElementsAre(2, 3));
}

// The rows of every selected output are checked, also those of an
// EMBEDDING output whose segments are not reported.
TEST(Aggregator, EmbeddingRowsAreCheckedWithoutSegmentEmbeddings) {
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0, 0, 0}), T({3}, {0, 0, 0}), T({3}, {0, 0, 0})}};
  auto result = Aggregate(*model, spans, outputs, AggregationOptions());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("'emb'"));
}

// With no segments (a stage whose source gave none), nothing is pooled: no
// tags, no pooled vector; the timeline is empty but keeps its labels.
TEST(Aggregator, NoSegmentsPoolNothing) {
  auto model = MakeModel();
  auto result = Aggregate(*model, {}, {}, AggregationOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->outputs_size(), 3);
  EXPECT_EQ(result->outputs(0).tags_size(), 0);
  EXPECT_THAT(result->outputs(1).labels(), ElementsAre("a", "b", "c"));
  EXPECT_FALSE(result->outputs(2).has_pooled());
}

// An output of a kind this build does not know is left out, not guessed at.
TEST(Aggregator, UnknownKindIsLeftOut) {
  auto known = MakeModel();
  v1::ModelConfig config = known->config();
  config.mutable_output(0)->set_kind(static_cast<v1::OutputKind>(99));
  Model model(config, 7, {{"a", "b", "c"}, {"a", "b", "c"}, {}}, nullptr);
  std::vector<SegmentSpan> spans = {{0, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0, 0, 0}), T({3}, {0, 0, 0}), T({2}, {0, 0})}};
  auto result = Aggregate(model, spans, outputs, AggregationOptions());
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->outputs_size(), 2);
  EXPECT_EQ(result->outputs(0).name(), "act");
}

TEST(Aggregator, SelectsOutputsByKind) {
  v1::AnalyzeOptions request;
  request.mutable_outputs()->set_tags(true);
  auto options = MakeAggregationOptions(request);
  ASSERT_TRUE(options.ok());
  auto model = MakeModel();
  std::vector<SegmentSpan> spans = {{0, 10}};
  std::vector<std::vector<Tensor>> outputs = {
      {T({3}, {0, 0, 0}), T({3}, {0, 0, 0}), T({2}, {0, 0})}};
  auto result = Aggregate(*model, spans, outputs, *options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->outputs_size(), 1);
  EXPECT_EQ(result->outputs(0).name(), "tags");
}

TEST(Aggregator, RequestOptionDefaultsAndErrors) {
  auto defaults = MakeAggregationOptions(v1::AnalyzeOptions());
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->top_k, 10);
  EXPECT_TRUE(defaults->tags && defaults->activations && defaults->embeddings);
  EXPECT_FALSE(defaults->segment_embeddings);

  v1::AnalyzeOptions bad;
  bad.set_top_k(-2);
  EXPECT_EQ(MakeAggregationOptions(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.set_top_k(0);
  bad.set_threshold(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(MakeAggregationOptions(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace audiotag
