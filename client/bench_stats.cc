#include "client/bench_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace audiotag {

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // Rank in 1..n; the small epsilon keeps q*n = 99.0000000001 at rank 99.
  const double rank = std::ceil(q * n - 1e-9);
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, n)) - 1;
  return sorted[index];
}

LatencySummary Summarize(std::vector<double> values) {
  LatencySummary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.count = static_cast<int64_t>(values.size());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / s.count;
  s.p50 = Percentile(values, 0.50);
  s.p90 = Percentile(values, 0.90);
  s.p95 = Percentile(values, 0.95);
  s.p99 = Percentile(values, 0.99);
  s.max = values.back();
  return s;
}

}  // namespace audiotag
