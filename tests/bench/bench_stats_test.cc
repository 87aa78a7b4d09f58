#include "client/bench_stats.h"

#include <vector>

#include "gtest/gtest.h"

namespace audiotag {
namespace {

TEST(Percentile, EmptyIsZero) { EXPECT_EQ(Percentile({}, 0.5), 0); }

TEST(Percentile, NearestRankOfOneToHundred) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 0.50), 50);
  EXPECT_EQ(Percentile(v, 0.90), 90);
  EXPECT_EQ(Percentile(v, 0.99), 99);
  EXPECT_EQ(Percentile(v, 1.0), 100);
  EXPECT_EQ(Percentile(v, 0.0), 1);
}

TEST(Percentile, SmallSetsReportObservedValues) {
  const std::vector<double> v = {1, 2, 3, 10};
  EXPECT_EQ(Percentile(v, 0.5), 2);   // rank ceil(2.0) = 2
  EXPECT_EQ(Percentile(v, 0.51), 3);  // rank ceil(2.04) = 3
  EXPECT_EQ(Percentile(v, 0.99), 10);
  EXPECT_EQ(Percentile({7}, 0.99), 7);
}

TEST(Summarize, SortsAndSummarizes) {
  const LatencySummary s = Summarize({0.3, 0.1, 0.2, 0.4});
  EXPECT_EQ(s.count, 4);
  EXPECT_DOUBLE_EQ(s.mean, 0.25);
  EXPECT_EQ(s.p50, 0.2);
  EXPECT_EQ(s.p99, 0.4);
  EXPECT_EQ(s.max, 0.4);
}

TEST(Summarize, EmptyIsAllZero) {
  const LatencySummary s = Summarize({});
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.p99, 0);
}

}  // namespace
}  // namespace audiotag
