#include "server/status_util.h"

#include <string>

namespace audiotag {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Messages can quote client input (a model name); keep them well under
  // the metadata size limits of gRPC clients.
  constexpr size_t kMaxMessage = 1024;
  std::string message(status.message().substr(0, kMaxMessage));
  if (status.message().size() > kMaxMessage) message += "...";
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::move(message));
}

}  // namespace audiotag
