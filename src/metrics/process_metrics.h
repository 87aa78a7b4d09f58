#ifndef AUDIOTAG_SRC_METRICS_PROCESS_METRICS_H_
#define AUDIOTAG_SRC_METRICS_PROCESS_METRICS_H_

// The standard Prometheus process metrics, read from /proc/self at scrape
// time (Debian's prometheus-cpp 1.0 has no process collector):
//   process_cpu_seconds_total      user + system CPU time, seconds
//   process_resident_memory_bytes  resident set size, bytes
//   process_virtual_memory_bytes   virtual memory size, bytes
//   process_open_fds               open file descriptors
//   process_max_fds                the RLIMIT_NOFILE soft limit
//   process_start_time_seconds     start time, seconds since the Unix epoch
// A value that cannot be read (no /proc) is left out.
//
// Thread-safety: thread-safe (reads only).

#include <vector>

#include "prometheus/metric_family.h"

namespace audiotag {

std::vector<prometheus::MetricFamily> CollectProcessMetrics();

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_METRICS_PROCESS_METRICS_H_
