#ifndef AUDIOTAG_SRC_MODEL_STAGE_LINK_H_
#define AUDIOTAG_SRC_MODEL_STAGE_LINK_H_

// Private to the model repository: connecting a pipeline stage
// (config.input.from_model or from_models) to the loaded versions of its
// source models, and ordering a repository's models so that sources load
// before their stages. Pure functions; thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/model/model.h"

namespace audiotag {

// What a stage needs from its sources to load.
struct StageInput {
  // In config order; the first is the primary.
  std::vector<ModelSource> sources;
  // Per-segment shape of the stage's input (no batch axis): the source
  // output's for one source (empty when the source skipped warm-up and the
  // output may be frame-wise); [sum of the dims] for several.
  std::vector<int64_t> shape;
};

// Checks a normalized stage config against its loaded sources (`sources[i]`
// for StageSources(*stage)[i]): each named output exists, its dim equals the
// configured dim when that is set, and with several sources each is an
// EMBEDDING output of one vector per segment. Copies the primary's root
// sample rate and segment into `stage`. INVALID_ARGUMENT naming the field
// otherwise.
absl::StatusOr<StageInput> LinkStage(
    const std::vector<std::shared_ptr<const Model>>& sources,
    v1::ModelConfig* stage);

// Models ordered so that every source comes before its stages (by the
// longest path to an audio model, then by name). `sources` maps each model
// name to its sources' names (empty for audio models). Models on a cycle are
// left out of `order` and listed in `cycles` with a cycle through them
// spelled out ("a -> b -> a"); a stage fed by a cycle stays in `order` (it
// fails to load because its source never becomes ready).
struct LoadOrder {
  std::vector<std::string> order;
  std::map<std::string, std::string> cycles;
};
LoadOrder OrderBySource(
    const std::map<std::string, std::vector<std::string>>& sources);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_STAGE_LINK_H_
