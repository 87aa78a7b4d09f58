#include "src/model/output_kind.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const OutputKindTraits& Kind(v1::OutputKind kind) {
  const OutputKindTraits* row = FindOutputKind(kind);
  EXPECT_NE(row, nullptr) << v1::OutputKind_Name(kind);
  static const OutputKindTraits kNone{};
  return row != nullptr ? *row : kNone;
}

// A kind added to model_config.proto without a row here would be accepted by
// nothing: the config check would reject it as unknown.
TEST(OutputKinds, EveryEnumValueButUnspecifiedHasOneRowNamedAfterIt) {
  const google::protobuf::EnumDescriptor* kinds = v1::OutputKind_descriptor();
  std::set<int> rows;
  for (const OutputKindTraits& row : OutputKinds()) {
    EXPECT_TRUE(rows.insert(row.kind).second) << row.name << " twice";
    EXPECT_EQ(row.name, v1::OutputKind_Name(row.kind));
  }
  for (int i = 0; i < kinds->value_count(); ++i) {
    const int value = kinds->value(i)->number();
    if (value == v1::OUTPUT_KIND_UNSPECIFIED) continue;
    EXPECT_EQ(rows.count(value), 1u) << kinds->value(i)->name();
  }
  EXPECT_EQ(rows.size(), static_cast<size_t>(kinds->value_count() - 1));
}

TEST(OutputKinds, UnspecifiedAndUnknownValuesHaveNoRow) {
  EXPECT_EQ(FindOutputKind(v1::OUTPUT_KIND_UNSPECIFIED), nullptr);
  EXPECT_EQ(FindOutputKind(static_cast<v1::OutputKind>(99)), nullptr);
  EXPECT_FALSE(Reports(static_cast<v1::OutputKind>(99), Report::kVectors));
}

TEST(OutputKinds, NamesForMessages) {
  EXPECT_EQ(OutputKindNames(), "TAGS, ACTIVATIONS or EMBEDDING");
}

// TAGS: one score vector per segment, labelled, pooled into ranked tags.
TEST(OutputKinds, TagsAreNeverFrameWise) {
  const OutputKindTraits& tags = Kind(v1::TAGS);
  EXPECT_TRUE(tags.labelled);
  EXPECT_EQ(tags.report, Report::kRankedTags);
  EXPECT_TRUE(Reports(v1::TAGS, Report::kRankedTags));
  EXPECT_TRUE(AcceptsRank(tags, 2));
  EXPECT_FALSE(AcceptsRank(tags, 3));
  EXPECT_FALSE(AcceptsRank(tags, 1));
  EXPECT_EQ(ExpectedShapes(tags, 4, 10), "[4, 10]");
  EXPECT_THAT(ShapeFromConfig(tags, 10), ElementsAre(10));
}

// ACTIVATIONS: labelled scores over time, per segment or per frame.
TEST(OutputKinds, ActivationsAreALabelledTimeline) {
  const OutputKindTraits& act = Kind(v1::ACTIVATIONS);
  EXPECT_TRUE(act.labelled);
  EXPECT_EQ(act.report, Report::kTimeline);
  EXPECT_FALSE(Reports(v1::ACTIVATIONS, Report::kRankedTags));
  EXPECT_TRUE(AcceptsRank(act, 2));
  EXPECT_TRUE(AcceptsRank(act, 3));
  EXPECT_FALSE(AcceptsRank(act, 4));
  EXPECT_EQ(ExpectedShapes(act, 4, 10), "[4, 10] or [4, T, 10]");
  EXPECT_THAT(ShapeFromConfig(act, 10), IsEmpty());
}

// EMBEDDING: unlabelled vectors, per segment or per frame, pooled too.
TEST(OutputKinds, EmbeddingsAreUnlabelledVectors) {
  const OutputKindTraits& emb = Kind(v1::EMBEDDING);
  EXPECT_FALSE(emb.labelled);
  EXPECT_EQ(emb.report, Report::kVectors);
  EXPECT_TRUE(Reports(v1::EMBEDDING, Report::kVectors));
  EXPECT_TRUE(AcceptsRank(emb, 3));
  EXPECT_EQ(ExpectedShapes(emb, 1, 128), "[1, 128] or [1, T, 128]");
  EXPECT_THAT(ShapeFromConfig(emb, 128), IsEmpty());
}

}  // namespace
}  // namespace audiotag
