#ifndef AUDIOTAG_SERVER_REFLECTION_V1_H_
#define AUDIOTAG_SERVER_REFLECTION_V1_H_

// grpc.reflection.v1.ServerReflection, answered from the process's generated
// descriptor pool: the same descriptors Debian's gRPC serves over v1alpha
// (grpc::reflection::InitProtoReflectionServerBuilderPlugin), for clients
// that ask only for v1. File requests return the file and every file it
// depends on, transitively.
//
// Thread-safety: thread-safe; each stream is served on its own.

#include <string>
#include <vector>

#include "grpc_reflection/v1/reflection.grpc.pb.h"

namespace audiotag {

class ReflectionV1Service final
    : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // `services`: the fully qualified names list_services reports.
  explicit ReflectionV1Service(std::vector<std::string> services)
      : services_(std::move(services)) {}

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>*
          stream) override;

 private:
  grpc::reflection::v1::ServerReflectionResponse Answer(
      const grpc::reflection::v1::ServerReflectionRequest& request) const;

  const std::vector<std::string> services_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_REFLECTION_V1_H_
