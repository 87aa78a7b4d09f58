#ifndef AUDIOTAG_SRC_MODEL_MODEL_H_
#define AUDIOTAG_SRC_MODEL_MODEL_H_

// One loaded, servable version of a model: its configuration, labels and the
// scheduler that runs its instances. Immutable once built; shared by
// shared_ptr, so a request keeps the version it started on alive even while a
// newer version replaces it in the repository.
//
// A pipeline stage (config.input.from_model or from_models) also holds the
// exact versions of its source models it was loaded and checked against, so
// a request that resolves a stage always gets a consistent pipeline, even
// while a source is being replaced.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "audiotag/v1/model_config.pb.h"
#include "src/batching/scheduler.h"

namespace audiotag {

class Model;

// Where (part of) a stage's input comes from: output `output` (an index into
// the source's config outputs) of `model`.
struct ModelSource {
  std::shared_ptr<const Model> model;
  int output = -1;
};

class Model {
 public:
  // `output_shapes`: per output, the per-segment shape (no batch axis) seen
  // at warm-up; empty entries when unknown (warm-up disabled).
  // `sources`: a stage's sources in config order (the first is the
  // primary, whose segments the stage has); empty for an audio model.
  Model(v1::ModelConfig config, int64_t version,
        std::vector<std::vector<std::string>> output_labels,
        std::unique_ptr<Scheduler> scheduler,
        std::vector<ModelSource> sources = {},
        std::vector<std::vector<int64_t>> output_shapes = {})
      : config_(std::move(config)),
        version_(version),
        output_labels_(std::move(output_labels)),
        scheduler_(std::move(scheduler)),
        sources_(std::move(sources)),
        output_shapes_(std::move(output_shapes)) {}

  const std::string& name() const { return config_.name(); }
  // Normalized: every default filled in.
  const v1::ModelConfig& config() const { return config_; }
  int64_t version() const { return version_; }
  // Labels of output i (empty for outputs without labels).
  const std::vector<std::string>& labels(int output_index) const {
    return output_labels_[output_index];
  }
  Scheduler& scheduler() const { return *scheduler_; }

  // True for a pipeline stage (its input is other models' outputs).
  bool is_stage() const { return !sources_.empty(); }
  // The source versions this stage was loaded against, primary first; empty
  // for audio models.
  const std::vector<ModelSource>& sources() const { return sources_; }
  // The primary source version; null for audio models.
  std::shared_ptr<const Model> source() const {
    return sources_.empty() ? nullptr : sources_[0].model;
  }
  // Index of the primary source output this stage consumes; -1 for audio
  // models.
  int source_output() const {
    return sources_.empty() ? -1 : sources_[0].output;
  }
  // Most hops to a root audio model: 0 for an audio model.
  int depth() const {
    int deepest = -1;
    for (const ModelSource& s : sources_) {
      deepest = std::max(deepest, s.model->depth());
    }
    return deepest + 1;
  }
  // Per-segment shape of output i seen at warm-up; empty when unknown.
  std::vector<int64_t> output_shape(int output_index) const {
    if (output_index < 0 ||
        output_index >= static_cast<int>(output_shapes_.size())) {
      return {};
    }
    return output_shapes_[output_index];
  }

 private:
  const v1::ModelConfig config_;
  const int64_t version_;
  const std::vector<std::vector<std::string>> output_labels_;
  const std::unique_ptr<Scheduler> scheduler_;
  const std::vector<ModelSource> sources_;
  const std::vector<std::vector<int64_t>> output_shapes_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_MODEL_H_
