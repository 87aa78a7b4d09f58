#include "src/metrics/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace audiotag {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Fields of /proc/self/stat after the command name, so that index 0 is field
// 3 ("state") of proc(5).
std::vector<std::string> StatFields() {
  const std::string stat = ReadFile("/proc/self/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return {};
  return absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipEmpty());
}

std::optional<double> Field(const std::vector<std::string>& fields,
                            int proc_field) {
  double value = 0;
  const size_t index = static_cast<size_t>(proc_field - 3);
  if (index >= fields.size() || !absl::SimpleAtod(fields[index], &value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> BootTimeSeconds() {
  std::istringstream in(ReadFile("/proc/stat"));
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    std::getline(in, key);
  }
  return std::nullopt;
}

void Add(prometheus::MetricType type, const char* name, const char* help,
         std::optional<double> value,
         std::vector<prometheus::MetricFamily>* out) {
  if (!value.has_value()) return;
  prometheus::MetricFamily& family = out->emplace_back();
  family.name = name;
  family.help = help;
  family.type = type;
  prometheus::ClientMetric& metric = family.metric.emplace_back();
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = *value;
  } else {
    metric.gauge.value = *value;
  }
}

}  // namespace

std::vector<prometheus::MetricFamily> CollectProcessMetrics() {
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::vector<std::string> stat = StatFields();

  std::optional<double> cpu;
  if (auto user = Field(stat, 14), system = Field(stat, 15); user && system) {
    cpu = (*user + *system) / ticks;
  }
  Add(prometheus::MetricType::Counter, "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.", cpu, &out);

  std::vector<std::string> statm =
      absl::StrSplit(ReadFile("/proc/self/statm"), ' ', absl::SkipEmpty());
  double pages = 0;
  if (statm.size() >= 2 && absl::SimpleAtod(statm[1], &pages)) {
    Add(prometheus::MetricType::Gauge, "process_resident_memory_bytes",
        "Resident memory size in bytes.", pages * page, &out);
  }
  if (!statm.empty() && absl::SimpleAtod(statm[0], &pages)) {
    Add(prometheus::MetricType::Gauge, "process_virtual_memory_bytes",
        "Virtual memory size in bytes.", pages * page, &out);
  }

  std::error_code error;
  double fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end;
       !error && it != end; it.increment(error)) {
    ++fds;
  }
  if (!error) {
    Add(prometheus::MetricType::Gauge, "process_open_fds",
        "Number of open file descriptors.", fds, &out);
  }
  if (rlimit limit; getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    Add(prometheus::MetricType::Gauge, "process_max_fds",
        "Maximum number of open file descriptors.",
        static_cast<double>(limit.rlim_cur), &out);
  }

  std::optional<double> start;
  if (auto boot = BootTimeSeconds(), since = Field(stat, 22); boot && since) {
    start = *boot + *since / ticks;
  }
  Add(prometheus::MetricType::Gauge, "process_start_time_seconds",
      "Start time of the process since unix epoch in seconds.", start, &out);
  return out;
}

}  // namespace audiotag
