#ifndef AUDIOTAG_SERVER_STATUS_UTIL_H_
#define AUDIOTAG_SERVER_STATUS_UTIL_H_

// The one place an engine error becomes a gRPC status. absl's codes are gRPC's
// codes, so the mapping keeps the code and the message; an OK status never
// carries an error.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace audiotag {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_STATUS_UTIL_H_
