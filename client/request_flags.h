#ifndef AUDIOTAG_CLIENT_REQUEST_FLAGS_H_
#define AUDIOTAG_CLIENT_REQUEST_FLAGS_H_

// The AnalyzeOptions flags that `analyze`, `bench` and `bulk` share:
// --models, --outputs, --top_k, --threshold, --pooling, --priority,
// --request_id. This file defines them; the commands only read them through
// RequestOptionsFromFlags. `bulk` takes all but --outputs (its outputs follow
// its own --embeddings) and defaults --priority to bulk.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/audiotag.pb.h"

namespace audiotag {

// AnalyzeOptions from the flags; `default_priority` applies when --priority
// is unset. INVALID_ARGUMENT naming the flag for a bad value.
absl::StatusOr<v1::AnalyzeOptions> RequestOptionsFromFlags(
    v1::Priority default_priority);

// The flags' names, in help order; without "outputs" when `with_outputs` is
// false (a command that chooses its outputs itself, as bulk does).
std::vector<std::string> RequestFlagNames(bool with_outputs = true);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_REQUEST_FLAGS_H_
