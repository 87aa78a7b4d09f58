#include "client/request_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::vector<std::string>, models, {},
          "Models to run (comma-separated); default the server's default "
          "models.");
ABSL_FLAG(std::vector<std::string>, outputs,
          std::vector<std::string>({"tags", "activations", "embeddings"}),
          "Which outputs (comma-separated): tags, activations, embeddings "
          "(pooled), segment_embeddings (one per segment; large).");
ABSL_FLAG(int, top_k, 10, "Tags per output; -1 for all.");
ABSL_FLAG(double, threshold, 0, "Drop tags scoring below this.");
ABSL_FLAG(std::string, pooling, "mean", "Clip pooling: mean or max.");
ABSL_FLAG(
    std::string, priority, "",
    "interactive or bulk; default interactive (bulk for `audiotag bulk`).");
ABSL_FLAG(std::string, request_id, "", "Request id sent with each call.");

namespace audiotag {

absl::StatusOr<v1::AnalyzeOptions> RequestOptionsFromFlags(
    v1::Priority default_priority) {
  v1::AnalyzeOptions options;
  for (const std::string& m : absl::GetFlag(FLAGS_models)) {
    options.add_models(m);
  }
  v1::OutputSelection* sel = options.mutable_outputs();
  for (const std::string& o : absl::GetFlag(FLAGS_outputs)) {
    if (o == "tags") {
      sel->set_tags(true);
    } else if (o == "activations") {
      sel->set_activations(true);
    } else if (o == "embeddings") {
      sel->set_embeddings(true);
    } else if (o == "segment_embeddings") {
      sel->set_segment_embeddings(true);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--outputs: unknown output '", o,
          "' (tags, activations, embeddings, segment_embeddings)"));
    }
  }
  options.set_top_k(absl::GetFlag(FLAGS_top_k));
  options.set_threshold(static_cast<float>(absl::GetFlag(FLAGS_threshold)));
  const std::string pooling = absl::GetFlag(FLAGS_pooling);
  if (pooling != "mean" && pooling != "max") {
    return absl::InvalidArgumentError("--pooling must be mean or max");
  }
  options.set_pooling(pooling == "max" ? v1::POOLING_MAX : v1::POOLING_MEAN);
  const std::string priority = absl::GetFlag(FLAGS_priority);
  if (priority == "interactive") {
    options.set_priority(v1::PRIORITY_INTERACTIVE);
  } else if (priority == "bulk") {
    options.set_priority(v1::PRIORITY_BULK);
  } else if (priority.empty()) {
    options.set_priority(default_priority);
  } else {
    return absl::InvalidArgumentError("--priority must be interactive or bulk");
  }
  options.set_request_id(absl::GetFlag(FLAGS_request_id));
  return options;
}

std::vector<std::string> RequestFlagNames(bool with_outputs) {
  std::vector<std::string> names = {"models",    "outputs", "top_k",
                                    "threshold", "pooling", "priority",
                                    "request_id"};
  if (!with_outputs) std::erase(names, "outputs");
  return names;
}

}  // namespace audiotag
