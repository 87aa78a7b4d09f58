#ifndef AUDIOTAG_CLIENT_BENCH_METRICS_H_
#define AUDIOTAG_CLIENT_BENCH_METRICS_H_

// Reading a Prometheus histogram from the server's metrics endpoint, for
// `audiotag bench`'s batch-size distribution: an HTTP GET through libcurl and
// a parser for the text exposition format (only what a histogram needs:
// `_bucket`, `_sum` and `_count` samples).
//
// Thread-safe; HttpGet and ReadHistograms block for at most about `timeout`.

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace audiotag {

// One histogram series. `buckets` maps each upper bound `le` (+Inf as
// infinity) to its cumulative count, as Prometheus exposes it.
struct Histogram {
  std::map<double, double> buckets;
  double sum = 0;
  double count = 0;
};

// Histograms of one metric family keyed by the value of one label (e.g.
// "model"); series without that label are keyed "".
using HistogramsByLabel = std::map<std::string, Histogram>;

// Parses the `family` histogram (`family_bucket`, `family_sum`,
// `family_count` samples) out of Prometheus text `text`, keyed by `label`.
// Other metrics, comments and blank lines are skipped. INVALID_ARGUMENT
// naming the line for a sample of `family` that does not parse. An absent
// family is an empty map, not an error.
absl::StatusOr<HistogramsByLabel> ParseHistograms(absl::string_view text,
                                                  absl::string_view family,
                                                  absl::string_view label);

// `after` minus `before`, series by series and bucket by bucket (a series
// missing from `before` counts from zero). Used to get one run's share of
// counters that only grow.
HistogramsByLabel HistogramDelta(const HistogramsByLabel& after,
                                 const HistogramsByLabel& before);

// Per-bucket (non-cumulative) counts of `h`: upper bound -> observations
// in (previous bound, bound].
std::map<double, double> BucketCounts(const Histogram& h);

// GETs `url` ("host:port", "host:port/path" or "http://host:port/path";
// path defaults to /metrics) with HTTP/1.0 and returns the body of a 200
// reply, at most 64 MiB. INVALID_ARGUMENT for a malformed url (no port, a
// scheme other than http). UNAVAILABLE, with the url and the reason in the
// message, when the server cannot be reached, does not answer within
// `timeout`, answers something that is not HTTP ("malformed HTTP reply"),
// sends more than 64 MiB, or replies with a status other than 200 (the
// status line is quoted).
absl::StatusOr<std::string> HttpGet(absl::string_view url,
                                    absl::Duration timeout);

// HttpGet then ParseHistograms: the `family` histograms at `url`, keyed by
// `label`. HttpGet's errors, or INVALID_ARGUMENT naming the url and the line
// for a reply whose `family` samples do not parse.
absl::StatusOr<HistogramsByLabel> ReadHistograms(absl::string_view url,
                                                 absl::string_view family,
                                                 absl::string_view label,
                                                 absl::Duration timeout);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_BENCH_METRICS_H_
