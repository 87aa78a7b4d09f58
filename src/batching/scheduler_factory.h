#ifndef AUDIOTAG_SRC_BATCHING_SCHEDULER_FACTORY_H_
#define AUDIOTAG_SRC_BATCHING_SCHEDULER_FACTORY_H_

// Creating a model's Scheduler from its config: the one place that maps a
// `batching { ... }` block (model_config.proto's BatchingConfig) to a
// scheduling policy and its implementation. A new policy is one file (its
// Scheduler subclass) plus one SchedulerPolicy value, its case in PolicyOf and
// its case in CreateScheduler (docs/ARCHITECTURE.md, "Adding a scheduler
// policy").
//
// Thread-safety: the functions are pure; the Scheduler they return is
// thread-safe (scheduler.h).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/batching/batch_runner.h"
#include "src/batching/scheduler.h"

namespace audiotag {

// The scheduling policies a config can choose.
enum class SchedulerPolicy {
  // Segments of all requests share batches (dynamic_batcher.h). The default.
  kDynamic,
  // `per_request: true`: the dynamic batcher with batches that never mix
  // requests, requests taking turns; the benchmarks' baseline.
  kPerRequest,
};

// The policy `batching` asks for.
SchedulerPolicy PolicyOf(const v1::BatchingConfig& batching);

// What a scheduler needs besides the config, known only when the model loads.
struct SchedulerParts {
  // The model's name, for thread names and log lines.
  std::string name;
  // The shape of every task's input, without the batch axis (an audio model:
  // {window_samples}; a stage: its source output's per-segment shape). Empty:
  // not checked.
  std::vector<int64_t> input_shape;
  // One runner per instance, each on its own thread. Must not be empty.
  std::vector<std::unique_ptr<BatchRunner>> runners;
  // Called after every batch from the thread that ran it; cheap and
  // thread-safe. Optional.
  std::function<void(const BatchStats&)> on_batch;
};

// The scheduler of the policy `batching` chooses, running `parts.runners`.
// `batching` must be normalized (src/model/model_config.h fills the
// defaults). INVALID_ARGUMENT for values the policy cannot run with (no
// runners, max_batch_size < 1, ...), naming them.
absl::StatusOr<std::unique_ptr<Scheduler>> CreateScheduler(
    const v1::BatchingConfig& batching, SchedulerParts parts);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_SCHEDULER_FACTORY_H_
