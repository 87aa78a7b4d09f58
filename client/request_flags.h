#ifndef AUDIOTAG_CLIENT_REQUEST_FLAGS_H_
#define AUDIOTAG_CLIENT_REQUEST_FLAGS_H_

// The AnalyzeOptions flags that `analyze`, `bench` and `bulk` share:
// --models, --outputs, --top_k, --threshold, --pooling, --priority,
// --request_id.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/audiotag.pb.h"

namespace audiotag {

// AnalyzeOptions from the flags; `default_priority` applies when --priority
// is unset. INVALID_ARGUMENT naming the flag for a bad value.
absl::StatusOr<v1::AnalyzeOptions> RequestOptionsFromFlags(
    v1::Priority default_priority);

// The flags' names, in help order.
const std::vector<std::string>& RequestFlagNames();

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_REQUEST_FLAGS_H_
