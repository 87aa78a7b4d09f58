// audiotag bench: a load generator for an audiotag deployment.
//
//   audiotag bench --server=host:port --synth_seconds=10 --concurrency=32
//   audiotag bench --audio=a.mp3,b.wav --rate=20 --duration_seconds=30
//       --metrics_url=host:9090 --format=table
//
// Closed loop (--concurrency) measures saturation throughput; open loop
// (--rate) measures latency at a given offered load. See client/bench_load.h.

#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "client/audiotag_client.h"
#include "client/bench_audio.h"
#include "client/bench_load.h"
#include "client/bench_metrics.h"
#include "client/bench_stats.h"
#include "client/commands.h"
#include "client/connection_flags.h"
#include "client/request_flags.h"
#include "src/common/command_line.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, format);
ABSL_DECLARE_FLAG(double, timeout_seconds);

ABSL_FLAG(int, concurrency, 1,
          "bench, closed loop: requests in flight at once.");
ABSL_FLAG(double, rate, 0,
          "bench, open loop: requests started per second (0: closed loop).");
ABSL_FLAG(std::string, arrival, "poisson",
          "bench, open loop: poisson or fixed inter-arrival times.");
ABSL_FLAG(double, duration_seconds, 10,
          "bench: stop starting requests after this long (0: no limit).");
ABSL_FLAG(int64_t, requests, 0,
          "bench: stop after starting this many requests (0: no limit).");
ABSL_FLAG(double, drain_seconds, 600,
          "bench: how long to wait for calls in flight once sending stops.");
ABSL_FLAG(std::vector<std::string>, audio, {},
          "bench: audio files to send, round-robin.");
ABSL_FLAG(double, synth_seconds, 0,
          "bench: send a synthetic 16 kHz WAV of this length instead.");
ABSL_FLAG(int, channels, 1, "bench: gRPC connections to spread calls over.");
ABSL_FLAG(std::string, metrics_url, "",
          "bench: the server's Prometheus endpoint (host:port[/path]) for the "
          "batch-size distribution.");
ABSL_FLAG(std::string, label, "", "bench: a name for this run in the output.");

namespace audiotag {
namespace {

constexpr char kBatchFamily[] = "audiotag_batch_size";

struct Run {
  LoadOptions load;
  LoadResult result;
  LatencySummary latency;
  // Batch-size histograms over the run, or why there are none.
  std::optional<HistogramsByLabel> batches;
  std::string batches_note;
};

absl::Status CheckInputFlags() {
  const double synth = absl::GetFlag(FLAGS_synth_seconds);
  const std::vector<std::string> files = absl::GetFlag(FLAGS_audio);
  if ((synth > 0) == !files.empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of --audio=FILE[,FILE...] and --synth_seconds=S");
  }
  return absl::OkStatus();
}

absl::Status LoadInputs(std::vector<std::string>* inputs) {
  const double synth = absl::GetFlag(FLAGS_synth_seconds);
  const std::vector<std::string> files = absl::GetFlag(FLAGS_audio);
  if (synth > 0) {
    inputs->push_back(SynthWav(synth));
    return absl::OkStatus();
  }
  for (const std::string& file : files) {
    absl::StatusOr<std::string> audio = ReadFile(file);
    if (!audio.ok()) return audio.status();
    inputs->push_back(*std::move(audio));
  }
  return absl::OkStatus();
}

absl::Status LoadOptionsFromFlags(LoadOptions* load) {
  load->server = absl::GetFlag(FLAGS_server);
  load->concurrency = absl::GetFlag(FLAGS_concurrency);
  load->rate = absl::GetFlag(FLAGS_rate);
  const std::string arrival = absl::GetFlag(FLAGS_arrival);
  if (arrival != "poisson" && arrival != "fixed") {
    return absl::InvalidArgumentError("--arrival must be poisson or fixed");
  }
  load->poisson = arrival == "poisson";
  load->duration = absl::Seconds(absl::GetFlag(FLAGS_duration_seconds));
  load->requests = absl::GetFlag(FLAGS_requests);
  load->drain = absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  load->timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  load->channels = absl::GetFlag(FLAGS_channels);
  return absl::OkStatus();
}

absl::StatusOr<HistogramsByLabel> ScrapeBatchSizes(const std::string& url) {
  return ReadHistograms(url, kBatchFamily, "model", absl::Seconds(5));
}

std::string FormatLe(double le) {
  return std::isinf(le) ? "+Inf" : absl::StrFormat("%g", le);
}

double Rate(double amount, absl::Duration elapsed) {
  const double s = absl::ToDoubleSeconds(elapsed);
  return s > 0 ? amount / s : 0;
}

// Open loop: requests actually started per second of the sending window
// (a Poisson schedule's count varies around --rate). 0 for a closed loop.
double OfferedRate(const Run& run) {
  if (run.load.rate <= 0) return 0;
  if (run.load.duration <= absl::ZeroDuration()) return run.load.rate;
  return Rate(run.result.started, run.load.duration);
}

int64_t OkCount(const LoadResult& r) {
  auto it = r.codes.find(absl::StatusCode::kOk);
  return it == r.codes.end() ? 0 : it->second;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string ToJson(const Run& run) {
  const LoadResult& r = run.result;
  const LatencySummary& l = run.latency;
  std::vector<std::string> codes;
  for (const auto& [code, n] : r.codes) {
    codes.push_back(
        absl::StrCat(JsonString(absl::StatusCodeToString(code)), ":", n));
  }
  std::vector<std::string> errors;
  for (const auto& [code, message] : r.first_error) {
    errors.push_back(absl::StrCat(JsonString(absl::StatusCodeToString(code)),
                                  ":", JsonString(message)));
  }
  std::string batches = "null";
  if (run.batches.has_value()) {
    std::vector<std::string> models;
    for (const auto& [model, h] : *run.batches) {
      std::vector<std::string> buckets;
      for (const auto& [le, n] : BucketCounts(h)) {
        buckets.push_back(
            absl::StrFormat("[%s,%.0f]", JsonString(FormatLe(le)), n));
      }
      models.push_back(absl::StrFormat(
          "%s:{\"batches\":%.0f,\"mean\":%.4g,\"buckets\":[%s]}",
          JsonString(model), h.count, h.count > 0 ? h.sum / h.count : 0.0,
          absl::StrJoin(buckets, ",")));
    }
    batches = absl::StrCat("{", absl::StrJoin(models, ","), "}");
  }
  const double elapsed = absl::ToDoubleSeconds(r.elapsed);
  return absl::StrFormat(
      "{\"label\":%s,\"mode\":\"%s\",\"concurrency\":%d,\"rate\":%g,"
      "\"offered_rate\":%.4f,"
      "\"elapsed_seconds\":%.3f,\"started\":%d,\"ok\":%d,\"codes\":{%s},"
      "\"errors\":{%s},\"requests_per_second\":%.4f,"
      "\"segments_per_second\":%.4f,\"audio_seconds_per_second\":%.4f,"
      "\"segments\":%d,\"latency_seconds\":{\"mean\":%.6f,\"p50\":%.6f,"
      "\"p90\":%.6f,\"p95\":%.6f,\"p99\":%.6f,\"max\":%.6f},"
      "\"server_seconds\":{\"decode\":%.4f,\"queue\":%.4f,\"compute\":%.4f},"
      "\"batch_sizes\":%s,\"batch_sizes_note\":%s}",
      JsonString(absl::GetFlag(FLAGS_label)),
      run.load.rate > 0 ? "open" : "closed", run.load.concurrency,
      run.load.rate, OfferedRate(run), elapsed, r.started, OkCount(r),
      absl::StrJoin(codes, ","), absl::StrJoin(errors, ","),
      Rate(OkCount(r), r.elapsed), Rate(r.segments, r.elapsed),
      Rate(r.audio_seconds, r.elapsed), r.segments, l.mean, l.p50, l.p90, l.p95,
      l.p99, l.max, r.server_decode_seconds, r.server_queue_seconds,
      r.server_compute_seconds, batches, JsonString(run.batches_note));
}

std::string ToTable(const Run& run) {
  const LoadResult& r = run.result;
  const LatencySummary& l = run.latency;
  std::string out;
  const std::string mode =
      run.load.rate > 0
          ? absl::StrFormat(
                "open loop, %g requests/s (%s; %.2f offered)", run.load.rate,
                run.load.poisson ? "poisson" : "fixed", OfferedRate(run))
          : absl::StrFormat("closed loop, concurrency %d",
                            run.load.concurrency);
  absl::StrAppendFormat(&out, "audiotag bench: %s against %s, %.1f s\n", mode,
                        run.load.server, absl::ToDoubleSeconds(r.elapsed));
  absl::StrAppendFormat(&out, "requests    started %d, ok %d", r.started,
                        OkCount(r));
  for (const auto& [code, n] : r.codes) {
    if (code != absl::StatusCode::kOk) {
      absl::StrAppendFormat(&out, ", %s %d", absl::StatusCodeToString(code), n);
    }
  }
  out += "\n";
  for (const auto& [code, message] : r.first_error) {
    absl::StrAppendFormat(&out, "  first %s: %s\n",
                          absl::StatusCodeToString(code), message);
  }
  absl::StrAppendFormat(&out,
                        "throughput  %.2f requests/s, %.2f segments/s, "
                        "%.2f audio s/s\n",
                        Rate(OkCount(r), r.elapsed),
                        Rate(r.segments, r.elapsed),
                        Rate(r.audio_seconds, r.elapsed));
  absl::StrAppendFormat(
      &out,
      "latency     p50 %.1f ms, p90 %.1f, p95 %.1f, p99 %.1f, "
      "max %.1f (mean %.1f)\n",
      l.p50 * 1e3, l.p90 * 1e3, l.p95 * 1e3, l.p99 * 1e3, l.max * 1e3,
      l.mean * 1e3);
  if (OkCount(r) > 0) {
    absl::StrAppendFormat(
        &out,
        "server      per request: decode %.1f ms, queue %.1f ms, "
        "compute %.1f ms (means from the replies' timing)\n",
        r.server_decode_seconds / OkCount(r) * 1e3,
        r.server_queue_seconds / OkCount(r) * 1e3,
        r.server_compute_seconds / OkCount(r) * 1e3);
  }
  if (!run.batches.has_value()) {
    absl::StrAppendFormat(&out, "batch sizes %s\n", run.batches_note);
    return out;
  }
  if (run.batches->empty()) out += "batch sizes none recorded during the run\n";
  for (const auto& [model, h] : *run.batches) {
    absl::StrAppendFormat(&out, "batch sizes %s: %.0f batches, mean %.2f\n",
                          model.empty() ? "(no model label)" : model, h.count,
                          h.count > 0 ? h.sum / h.count : 0.0);
    for (const auto& [le, n] : BucketCounts(h)) {
      if (n > 0) {
        absl::StrAppendFormat(&out, "  <= %-5s %8.0f  %5.1f%%\n", FormatLe(le),
                              n, h.count > 0 ? 100 * n / h.count : 0.0);
      }
    }
  }
  return out;
}

}  // namespace

int RunBenchCommand(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::cerr
        << "audiotag bench: takes no positional arguments (use --audio)\n";
    return 2;
  }
  const std::string format = absl::GetFlag(FLAGS_format);
  Run run;
  absl::StatusOr<v1::AnalyzeOptions> options =
      RequestOptionsFromFlags(v1::PRIORITY_INTERACTIVE);
  absl::StatusOr<Connection> connection = ConnectionFromFlags();
  for (absl::Status s : {LoadOptionsFromFlags(&run.load), options.status(),
                         connection.status(), CheckInputFlags()}) {
    if (!s.ok()) {
      std::cerr << "audiotag bench: " << s.message() << "\n";
      return 2;
    }
  }
  if (absl::GetFlag(FLAGS_dry_run)) return FinishDryRun();
  run.load.connection = *connection;
  std::vector<std::string> inputs;
  if (absl::Status s = LoadInputs(&inputs); !s.ok()) {
    std::cerr << "audiotag bench: " << s.message() << "\n";
    return 2;
  }

  const std::string metrics_url = absl::GetFlag(FLAGS_metrics_url);
  std::optional<HistogramsByLabel> before;
  if (metrics_url.empty()) {
    run.batches_note =
        "not available: no --metrics_url (the server's Prometheus endpoint)";
  } else if (absl::StatusOr<HistogramsByLabel> h =
                 ScrapeBatchSizes(metrics_url);
             h.ok()) {
    before = *std::move(h);
  } else {
    run.batches_note = absl::StrCat("not available: ", h.status().message());
  }

  if (absl::Status s = RunLoad(run.load, inputs, *options, &run.result);
      !s.ok()) {
    std::cerr << "audiotag bench: " << s.message() << "\n";
    return 2;
  }
  run.latency = Summarize(run.result.latencies_seconds);

  if (before.has_value()) {
    absl::StatusOr<HistogramsByLabel> after = ScrapeBatchSizes(metrics_url);
    if (after.ok()) {
      run.batches = HistogramDelta(*after, *before);
      if (run.batches->empty()) {
        run.batches_note = absl::StrCat("the endpoint exposes no ",
                                        kBatchFamily, " histogram");
      }
    } else {
      run.batches_note =
          absl::StrCat("not available: ", after.status().message());
    }
  }

  std::cout << (format == "table" ? ToTable(run) : ToJson(run)) << std::endl;
  for (const auto& [code, message] : run.result.first_error) {
    std::cerr << "audiotag bench: first " << absl::StatusCodeToString(code)
              << ": " << message << "\n";
    if (const std::string hint =
            run.load.connection.Hint(absl::Status(code, message));
        !hint.empty()) {
      std::cerr << "audiotag bench: hint: " << hint << "\n";
    }
  }
  // Any failed call makes the exit code 1, so scripts notice.
  return OkCount(run.result) == run.result.started ? 0 : 1;
}

}  // namespace audiotag
