#ifndef AUDIOTAG_SRC_MODEL_MODEL_CONFIG_H_
#define AUDIOTAG_SRC_MODEL_MODEL_CONFIG_H_

// Reading and checking a model folder's config.pbtxt.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "audiotag/v1/model_config.pb.h"

namespace audiotag {

// Parses `text` (protobuf text format). Unknown fields and syntax errors are
// INVALID_ARGUMENT with "<file_name>:<line>:<column>: <what>".
absl::StatusOr<v1::ModelConfig> ParseModelConfig(absl::string_view text,
                                                 absl::string_view file_name);

// Reads and parses `path`; NOT_FOUND if it does not exist.
absl::StatusOr<v1::ModelConfig> ReadModelConfig(const std::string& path);

// Fills defaults (name from `folder_name`, hop = window, batching defaults,
// ...) and checks every field a model needs: INVALID_ARGUMENT naming the
// field and what is wrong with it.
absl::Status NormalizeModelConfig(absl::string_view folder_name,
                                  v1::ModelConfig* config);

// True when `config` is a pipeline stage (input.from_model or
// input.from_models).
bool IsStage(const v1::ModelConfig& config);

// A stage's sources in order: input.from_model, or input.from_models.source.
// Empty for an audio model.
std::vector<v1::ModelInput> StageSources(const v1::ModelConfig& config);

// The config field of source `index`, for errors: "input.from_model" or
// "input.from_models.source[<index>]".
std::string StageSourceField(const v1::ModelConfig& config, int index);

// Copies the source's sample rate and segment (its own, or inherited from its
// root when it is a stage itself) into a normalized stage config, so a stage
// reports and aggregates with its root model's segment timing.
void InheritRootTiming(const v1::ModelConfig& source, v1::ModelConfig* stage);

// Reads a labels file: one label per line, blank lines at the end ignored.
absl::StatusOr<std::vector<std::string>> ReadLabels(const std::string& path);

// A parsed InstanceConfig.device.
struct DeviceSpec {
  bool cuda = false;
  int index = -1;  // "cuda:N" -> N; -1 for "cpu" and a bare "cuda"
};

// Parses "cpu", "cuda" or "cuda:N"; INVALID_ARGUMENT otherwise. Says nothing
// about whether the device exists (the runner checks that at load).
absl::StatusOr<DeviceSpec> ParseDevice(absl::string_view device);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_MODEL_CONFIG_H_
