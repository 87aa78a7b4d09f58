#include "src/model/stage_link.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(OrderBySource, SourcesComeBeforeTheirStages) {
  const LoadOrder order = OrderBySource(
      {{"head", {"mid"}}, {"mid", {"root"}}, {"root", {}}, {"other", {}}});
  EXPECT_THAT(order.order, ElementsAre("other", "root", "mid", "head"));
  EXPECT_THAT(order.cycles, IsEmpty());
}

TEST(OrderBySource, ReportsCyclesAndStillOrdersStagesFedByThem) {
  const LoadOrder order = OrderBySource(
      {{"a", {"b"}}, {"b", {"a"}}, {"c", {"a"}}, {"self", {"self"}}});
  EXPECT_THAT(order.cycles,
              ElementsAre(Pair("a", "a -> b -> a"), Pair("b", "b -> a -> b"),
                          Pair("self", "self -> self")));
  EXPECT_THAT(order.order, ElementsAre("c"));
}

TEST(OrderBySource, MissingSourceIsNotACycle) {
  const LoadOrder order = OrderBySource({{"head", {"gone"}}});
  EXPECT_THAT(order.order, ElementsAre("head"));
  EXPECT_THAT(order.cycles, IsEmpty());
}

TEST(OrderBySource, AStageWithSeveralSourcesComesAfterTheDeepest) {
  // "joined" reads a backbone and a head on another backbone.
  const LoadOrder order = OrderBySource({{"joined", {"a", "head_b"}},
                                         {"head_b", {"b"}},
                                         {"a", {}},
                                         {"b", {}},
                                         {"late", {"joined", "a"}}});
  EXPECT_THAT(order.order, ElementsAre("a", "b", "head_b", "joined", "late"));
  EXPECT_THAT(order.cycles, IsEmpty());
}

TEST(OrderBySource, ACycleThroughASecondSourceIsReported) {
  const LoadOrder order = OrderBySource({{"x", {"a", "y"}},
                                         {"y", {"z"}},
                                         {"z", {"x"}},
                                         {"a", {}},
                                         {"fed", {"a", "x"}}});
  EXPECT_THAT(order.cycles, ElementsAre(Pair("x", "x -> y -> z -> x"),
                                        Pair("y", "y -> z -> x -> y"),
                                        Pair("z", "z -> x -> y -> z")));
  EXPECT_THAT(order.order, ElementsAre("a", "fed"));
}

}  // namespace
}  // namespace audiotag
