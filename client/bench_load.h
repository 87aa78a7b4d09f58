#ifndef AUDIOTAG_CLIENT_BENCH_LOAD_H_
#define AUDIOTAG_CLIENT_BENCH_LOAD_H_

// The load generator behind `audiotag bench`. It sends Analyze calls with
// gRPC's callback API, so no thread ever blocks on a reply:
//
//  - closed loop (LoadOptions::rate == 0): `concurrency` virtual clients, each
//    sending its next request as soon as its previous one finishes;
//  - open loop (rate > 0): requests start on a schedule (fixed interval or
//    Poisson arrivals) whether or not earlier ones have finished, which is
//    what measures latency under a given offered load without coordinated
//    omission.
//
// Inputs are whole encoded files sent round-robin, each as one unary
// AnalyzeRequest (the server's default message limit is 64 MiB).
//
// Thread-safety: Run is called from one thread; the generator is not reused.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.pb.h"
#include "client/connection.h"

namespace audiotag {

struct LoadOptions {
  // gRPC target of the server. Required.
  std::string server;
  // Closed loop: requests in flight at once. Default 1. Ignored when rate > 0.
  int concurrency = 1;
  // Open loop: requests started per second; 0 (default) means closed loop.
  double rate = 0;
  // Open loop: exponential inter-arrival times (true, default) or a fixed
  // interval of 1/rate.
  bool poisson = true;
  // Stop starting requests after this long. Zero means no time limit (then
  // `requests` must be > 0). Default 10 s.
  absl::Duration duration = absl::Seconds(10);
  // Stop starting requests after this many; 0 (default) means no limit.
  int64_t requests = 0;
  // Once sending stops, how long to wait for calls still in flight before
  // cancelling them (they then count as CANCELLED). Default 10 minutes.
  absl::Duration drain = absl::Minutes(10);
  // Per-call deadline; zero (default) means none.
  absl::Duration timeout = absl::ZeroDuration();
  // gRPC channels to spread calls over (each its own TCP connection).
  // Default 1.
  int channels = 1;
  // Transport security and bearer token. Default plaintext, no token.
  Connection connection;
  // Seed of the Poisson schedule.
  uint32_t seed = 1;
};

// What one run measured. Latencies are of successful calls only.
struct LoadResult {
  int64_t started = 0;
  // Final status code of every call, OK included.
  std::map<absl::StatusCode, int64_t> codes;
  // One message per failing code, the first seen.
  std::map<absl::StatusCode, std::string> first_error;
  std::vector<double> latencies_seconds;
  // Sums over successful calls: segments over all models in the reply, and
  // decoded audio duration.
  int64_t segments = 0;
  double audio_seconds = 0;
  // From the first send to the last completion.
  absl::Duration elapsed;
  // Server-reported times summed over successful calls (Timing in the reply).
  double server_queue_seconds = 0;
  double server_compute_seconds = 0;
  double server_decode_seconds = 0;
};

// Runs one load test. `inputs` are encoded audio files (at least one), sent
// round-robin; `options` are sent with every request. Returns
// INVALID_ARGUMENT for unusable LoadOptions; call failures are counted in
// the result, never returned.
absl::Status RunLoad(const LoadOptions& load,
                     const std::vector<std::string>& inputs,
                     const v1::AnalyzeOptions& options, LoadResult* result);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_BENCH_LOAD_H_
