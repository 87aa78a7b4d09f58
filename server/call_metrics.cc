#include "server/call_metrics.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace audiotag {
namespace {

using grpc::experimental::InterceptionHookPoints;

// The label for `method`: its full name when it belongs to a service this
// server registers, else "other".
std::string MethodLabel(const char* method) {
  if (method == nullptr) return "other";
  static const auto* const kPrefixes = new std::vector<std::string>{
      "/audiotag.v1.AudioTagger/", "/grpc.health.v1.Health/",
      "/grpc.reflection.v1alpha.ServerReflection/",
      "/grpc.reflection.v1.ServerReflection/"};
  const absl::string_view name(method);
  constexpr size_t kMaxMethodName = 128;
  if (name.size() > kMaxMethodName) return "other";
  for (const std::string& prefix : *kPrefixes) {
    if (absl::StartsWith(name, prefix) &&
        name.find('/', prefix.size()) == absl::string_view::npos) {
      return std::string(name);
    }
  }
  return "other";
}

class CallMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallMetricsInterceptor(Metrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), start_(absl::Now()) {
    metrics_->CallStarted(method_);
  }

  // gRPC destroys the interceptor when the call is over; a call that never
  // sent a status (the client went away) counts as CANCELLED.
  ~CallMetricsInterceptor() override {
    if (!finished_) Finish(absl::StatusCode::kCancelled);
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    // Counted before the status leaves, so a client that has its reply also
    // finds it counted.
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS) &&
        !finished_) {
      Finish(
          static_cast<absl::StatusCode>(methods->GetSendStatus().error_code()));
    }
    methods->Proceed();
  }

 private:
  void Finish(absl::StatusCode code) {
    finished_ = true;
    metrics_->CallFinished(method_, code,
                           absl::ToDoubleSeconds(absl::Now() - start_));
  }

  Metrics* const metrics_;
  const std::string method_;
  const absl::Time start_;
  bool finished_ = false;
};

class CallMetricsFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallMetricsFactory(Metrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallMetricsInterceptor(metrics_, MethodLabel(info->method()));
  }

 private:
  Metrics* const metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeCallMetricsInterceptorFactory(Metrics* metrics) {
  return std::make_unique<CallMetricsFactory>(metrics);
}

}  // namespace audiotag
