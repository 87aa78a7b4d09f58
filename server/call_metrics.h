#ifndef AUDIOTAG_SERVER_CALL_METRICS_H_
#define AUDIOTAG_SERVER_CALL_METRICS_H_

// Counts every gRPC call the server answers, whatever its service (AudioTagger,
// health, reflection) and however it ends (UNAUTHENTICATED, refused,
// cancelled): audiotag_grpc_calls_total{method,code},
// audiotag_grpc_call_duration_seconds{method} and
// audiotag_grpc_calls_in_flight{method}. A gRPC server interceptor, so no
// handler can forget it. Method names outside the server's own services are
// counted as "other", so clients cannot mint label values.
//
// Install with ServerBuilder::experimental().SetInterceptorCreators.

#include <memory>

#include <grpcpp/support/server_interceptor.h>

#include "src/metrics/metrics.h"

namespace audiotag {

// `metrics` must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeCallMetricsInterceptorFactory(Metrics* metrics);

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_CALL_METRICS_H_
