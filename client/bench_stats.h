#ifndef AUDIOTAG_CLIENT_BENCH_STATS_H_
#define AUDIOTAG_CLIENT_BENCH_STATS_H_

// Latency statistics for `audiotag bench`. Pure functions; thread-compatible.

#include <cstdint>
#include <vector>

namespace audiotag {

// The q-quantile (0 <= q <= 1) of `sorted` (ascending) by the nearest-rank
// method: the smallest value with at least q of the values at or below it, so
// every reported percentile is a latency that was actually observed. 0 for an
// empty vector; q <= 0 gives the minimum, q >= 1 the maximum.
double Percentile(const std::vector<double>& sorted, double q);

// Summary of a set of latencies, in the unit they were given in (seconds).
struct LatencySummary {
  int64_t count = 0;
  double mean = 0;
  double p50 = 0;
  double p90 = 0;
  double p95 = 0;
  double p99 = 0;
  double max = 0;
};

// Sorts `values` and summarizes them; all zeros when empty.
LatencySummary Summarize(std::vector<double> values);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_BENCH_STATS_H_
