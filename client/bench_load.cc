#include "client/bench_load.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "audiotag/v1/audiotag.grpc.pb.h"

namespace audiotag {
namespace {

// One call in flight; owned by the generator's `in_flight_` set until its
// callback runs.
struct Call {
  grpc::ClientContext context;
  v1::AnalyzeResponse response;
  absl::Time start;
};

class LoadGenerator {
 public:
  LoadGenerator(const LoadOptions& load, const std::vector<std::string>& inputs,
                const v1::AnalyzeOptions& options)
      : load_(load) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    for (int i = 0; i < load_.channels; ++i) {
      // A distinct argument per channel keeps gRPC from sharing one
      // connection between them.
      grpc::ChannelArguments channel_args = args;
      channel_args.SetInt("audiotag.bench_channel", i);
      stubs_.push_back(v1::AudioTagger::NewStub(
          load_.connection.NewChannel(load_.server, channel_args)));
    }
    // Requests are built once and shared (read-only) by every call.
    for (const std::string& audio : inputs) {
      v1::AnalyzeRequest request;
      request.set_audio(audio);
      *request.mutable_options() = options;
      requests_.push_back(std::move(request));
    }
  }

  void Run(LoadResult* result) {
    start_ = absl::Now();
    if (load_.rate > 0) {
      RunOpenLoop();
    } else {
      for (int i = 0; i < load_.concurrency; ++i) {
        if (!MaySend()) break;
        Send();
      }
    }
    // Closed loop: the virtual clients stop by themselves once the duration
    // or request count is reached; open loop: sending has stopped.
    absl::Time deadline = absl::Now() + load_.drain;
    if (load_.rate <= 0) {
      deadline = load_.duration > absl::ZeroDuration()
                     ? start_ + load_.duration + load_.drain
                     : absl::InfiniteFuture();
    }
    Drain(deadline);
    // Done may still be on its way out (unlocking mu_, deleting its call)
    // when Drain sees the last call leave; `this` must outlive it.
    while (callbacks_running_.load(std::memory_order_acquire) > 0) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    absl::MutexLock lock(&mu_);
    result_.elapsed = last_done_ - start_;
    *result = std::move(result_);
  }

 private:
  // Whether another request may start now; counts it as started if so.
  bool MaySend() {
    if (stopping_.load()) return false;
    const int64_t n = started_.fetch_add(1);
    const bool ok = (load_.requests <= 0 || n < load_.requests) &&
                    (load_.duration <= absl::ZeroDuration() ||
                     absl::Now() - start_ < load_.duration);
    if (!ok) {
      started_.fetch_sub(1);
      stopping_.store(true);
    }
    return ok;
  }

  void Send() {
    const int64_t n = sequence_.fetch_add(1);
    const v1::AnalyzeRequest& request = requests_[n % requests_.size()];
    auto call = std::make_unique<Call>();
    if (load_.timeout > absl::ZeroDuration()) {
      call->context.set_deadline(
          absl::ToChronoTime(absl::Now() + load_.timeout));
    }
    load_.connection.Authorize(&call->context);
    {
      absl::MutexLock lock(&mu_);
      if (reserved_ > 0) --reserved_;
      // Drain has cancelled the calls in flight; a virtual client that
      // decided to go on just before must not start one it would miss.
      if (cancelled_all_) return;
      in_flight_.insert(call.get());
      ++result_.started;
    }
    call->start = absl::Now();
    Call* raw = call.release();  // deleted by Done
    stubs_[n % stubs_.size()]->async()->Analyze(
        &raw->context, &request, &raw->response,
        [this, raw](grpc::Status status) { Done(raw, status); });
  }

  // Runs on a gRPC thread.
  void Done(Call* call, const grpc::Status& status) {
    callbacks_running_.fetch_add(1, std::memory_order_relaxed);
    const absl::Time now = absl::Now();
    const auto code = static_cast<absl::StatusCode>(status.error_code());
    // Closed loop: this virtual client sends its next request. Decided before
    // the call leaves in_flight_ so that Drain never sees a gap.
    const bool again = load_.rate <= 0 && MaySend();
    {
      absl::MutexLock lock(&mu_);
      in_flight_.erase(call);
      if (again) ++reserved_;
      last_done_ = std::max(last_done_, now);
      ++result_.codes[code];
      if (status.ok()) {
        result_.latencies_seconds.push_back(
            absl::ToDoubleSeconds(now - call->start));
        for (const v1::ModelResult& r : call->response.results()) {
          result_.segments += r.num_segments();
        }
        result_.audio_seconds += call->response.audio().duration_seconds();
        const v1::Timing& t = call->response.timing();
        result_.server_queue_seconds += t.queue_seconds();
        result_.server_compute_seconds += t.compute_seconds();
        result_.server_decode_seconds += t.decode_seconds();
      } else if (!result_.first_error.contains(code)) {
        result_.first_error[code] = status.error_message();
      }
    }
    delete call;
    if (again) Send();
    // The last touch of `this`: Run may destroy the generator after it.
    callbacks_running_.fetch_sub(1, std::memory_order_release);
  }

  void RunOpenLoop() {
    std::mt19937_64 rng(load_.seed);
    std::exponential_distribution<double> gap(load_.rate);
    absl::Time next = start_;
    while (true) {
      absl::SleepFor(next - absl::Now());
      if (!MaySend()) break;
      Send();
      next += absl::Seconds(load_.poisson ? gap(rng) : 1.0 / load_.rate);
    }
  }

  // Waits for the calls in flight; cancels what is left at `deadline`.
  void Drain(absl::Time deadline) {
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return in_flight_.empty() && reserved_ == 0;
    };
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithDeadline(absl::Condition(&idle), deadline)) return;
    stopping_.store(true);
    cancelled_all_ = true;
    for (Call* call : in_flight_) call->context.TryCancel();
    mu_.Await(absl::Condition(&idle));
  }

  const LoadOptions load_;
  std::vector<std::unique_ptr<v1::AudioTagger::Stub>> stubs_;
  std::vector<v1::AnalyzeRequest> requests_;
  absl::Time start_;
  std::atomic<int64_t> started_{0};
  std::atomic<int64_t> sequence_{0};
  std::atomic<bool> stopping_{false};

  absl::Mutex mu_;
  std::set<Call*> in_flight_ ABSL_GUARDED_BY(mu_);
  // Closed loop: calls decided on in Done but not yet in in_flight_.
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_all_ ABSL_GUARDED_BY(mu_) = false;
  // Done callbacks that have started and not yet returned.
  std::atomic<int> callbacks_running_{0};
  LoadResult result_ ABSL_GUARDED_BY(mu_);
  absl::Time last_done_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace

absl::Status RunLoad(const LoadOptions& load,
                     const std::vector<std::string>& inputs,
                     const v1::AnalyzeOptions& options, LoadResult* result) {
  if (inputs.empty()) return absl::InvalidArgumentError("no audio to send");
  if (load.rate < 0) return absl::InvalidArgumentError("--rate must be >= 0");
  if (load.rate == 0 && load.concurrency < 1) {
    return absl::InvalidArgumentError("--concurrency must be >= 1");
  }
  if (load.duration <= absl::ZeroDuration() && load.requests <= 0) {
    return absl::InvalidArgumentError(
        "give --duration_seconds or --requests (or both)");
  }
  if (load.channels < 1) {
    return absl::InvalidArgumentError("--channels must be >= 1");
  }
  LoadGenerator generator(load, inputs, options);
  generator.Run(result);
  if (result->started == 0) result->elapsed = absl::ZeroDuration();
  return absl::OkStatus();
}

}  // namespace audiotag
