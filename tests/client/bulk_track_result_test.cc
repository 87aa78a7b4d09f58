#include "client/bulk/track_result.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace audiotag::bulk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// One model with an output of each kind, and one of a kind this client does
// not know (a newer server's).
v1::AnalyzeResponse Response() {
  v1::AnalyzeResponse response;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        results {
          model: "m"
          version: 2
          outputs {
            name: "t"
            kind: TAGS
            tags { label: "loud" score: 0.5 index: 1 }
          }
          outputs {
            name: "a"
            kind: ACTIVATIONS
            labels: [ "x", "y" ]
            frames { scores: [ 0.25, 1 ] }
            frames { scores: [ 0.75, 0 ] }
          }
          outputs {
            name: "e"
            kind: EMBEDDING
            pooled { values: [ 1, 2 ] }
            segments {
              start_seconds: 0
              end_seconds: 1
              values: [ 3, 4 ]
            }
          }
          outputs {
            name: "n"
            kind: 9
            tags { label: "new" score: 1 index: 0 }
            pooled { values: [ 5 ] }
          }
        }
      )pb",
      &response));
  return response;
}

TEST(FromResponse, EachKindGoesToItsOwnSection) {
  const AnalyzedTrack track =
      FromResponse("abc", Response(), EmbeddingMode::kPooled, CallTiming());
  EXPECT_THAT(track.body,
              HasSubstr("\"tags\":{\"m/t\":[{\"label\":\"loud\",\"score\":0.5,"
                        "\"index\":1}]}"));
  EXPECT_THAT(track.body,
              HasSubstr("\"activations_summary\":{\"m/a\":{\"frames\":2,"
                        "\"max\":{\"x\":0.75,\"y\":1},\"mean\":{\"x\":0.5,"
                        "\"y\":0.5}}}"));
  EXPECT_THAT(track.body, Not(HasSubstr("m/n")));
  ASSERT_EQ(track.embeddings.size(), 1u);
  EXPECT_EQ(track.embeddings[0].key, "m/e");
  EXPECT_EQ(track.embeddings[0].rows, 1);
  EXPECT_THAT(track.embeddings[0].values, ElementsAre(1, 2));
}

TEST(FromResponse, SegmentEmbeddingsCarryTheirSpans) {
  const AnalyzedTrack track =
      FromResponse("abc", Response(), EmbeddingMode::kSegments, CallTiming());
  ASSERT_EQ(track.embeddings.size(), 1u);
  EXPECT_EQ(track.embeddings[0].dim, 2);
  EXPECT_THAT(track.embeddings[0].values, ElementsAre(3, 4));
  ASSERT_EQ(track.embeddings[0].spans.size(), 1u);
  EXPECT_EQ(track.embeddings[0].spans[0].second, 1.0);
  EXPECT_TRUE(
      FromResponse("abc", Response(), EmbeddingMode::kNone, CallTiming())
          .embeddings.empty());
}

}  // namespace
}  // namespace audiotag::bulk
