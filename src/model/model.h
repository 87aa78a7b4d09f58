#ifndef AUDIOTAG_SRC_MODEL_MODEL_H_
#define AUDIOTAG_SRC_MODEL_MODEL_H_

// One loaded, servable version of a model: its configuration, labels and the
// scheduler that runs its instances. Immutable once built; shared by
// shared_ptr, so a request keeps the version it started on alive even while a
// newer version replaces it in the repository.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "audiotag/v1/model_config.pb.h"
#include "src/batching/scheduler.h"

namespace audiotag {

class Model {
 public:
  Model(v1::ModelConfig config, int64_t version,
        std::vector<std::vector<std::string>> output_labels,
        std::unique_ptr<Scheduler> scheduler)
      : config_(std::move(config)),
        version_(version),
        output_labels_(std::move(output_labels)),
        scheduler_(std::move(scheduler)) {}

  const std::string& name() const { return config_.name(); }
  // Normalized: every default filled in.
  const v1::ModelConfig& config() const { return config_; }
  int64_t version() const { return version_; }
  // Labels of output i (empty for outputs without labels).
  const std::vector<std::string>& labels(int output_index) const {
    return output_labels_[output_index];
  }
  Scheduler& scheduler() const { return *scheduler_; }

 private:
  const v1::ModelConfig config_;
  const int64_t version_;
  const std::vector<std::vector<std::string>> output_labels_;
  const std::unique_ptr<Scheduler> scheduler_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_MODEL_H_
