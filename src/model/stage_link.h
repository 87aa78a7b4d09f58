#ifndef AUDIOTAG_SRC_MODEL_STAGE_LINK_H_
#define AUDIOTAG_SRC_MODEL_STAGE_LINK_H_

// Private to the model repository: connecting a pipeline stage
// (config.input.from_model) to the loaded version of its source model, and
// ordering a repository's models so that sources load before their stages.
// Pure functions; thread-safe.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/model/model.h"

namespace audiotag {

// What a stage needs from its source to load.
struct StageInput {
  ModelSource source;
  // Per-segment shape of the source output (no batch axis); empty when the
  // source skipped warm-up and the output may be frame-wise.
  std::vector<int64_t> shape;
};

// Checks a normalized stage config against the loaded `source` (its named
// output exists; its dim equals from_model.dim when that is set) and copies
// the root model's sample rate and segment into `stage`. INVALID_ARGUMENT
// naming the field otherwise.
absl::StatusOr<StageInput> LinkStage(std::shared_ptr<const Model> source,
                                     v1::ModelConfig* stage);

// Models ordered so that every source comes before its stages. `sources`
// maps each model name to its source's name ("" for audio models). Models on
// a cycle are left out of `order` and listed in `cycles` with the cycle
// spelled out ("a -> b -> a").
struct LoadOrder {
  std::vector<std::string> order;
  std::map<std::string, std::string> cycles;
};
LoadOrder OrderBySource(const std::map<std::string, std::string>& sources);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_STAGE_LINK_H_
