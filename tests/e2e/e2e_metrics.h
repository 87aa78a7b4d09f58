#ifndef AUDIOTAG_TESTS_E2E_E2E_METRICS_H_
#define AUDIOTAG_TESTS_E2E_E2E_METRICS_H_

// Reading the real server's Prometheus endpoint from end-to-end tests.

#include <optional>
#include <string>

namespace audiotag::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
int PickFreePort();

// The body of GET http://127.0.0.1:<port>/metrics ("" when unreachable).
std::string ScrapeMetricsText(int port);

// The value of the sample whose name-and-labels part is exactly `series`
// (e.g. `audiotag_batch_size_sum{model="backbone"}`), if present.
std::optional<double> MetricValue(const std::string& text,
                                  const std::string& series);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_E2E_E2E_METRICS_H_
