#include "src/batching/scheduler_factory.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/batching/dynamic_batcher.h"

namespace audiotag {
namespace {

// The dynamic batcher's options from `batching`, per_request left false.
BatcherOptions DynamicBatcherOptions(const v1::BatchingConfig& batching,
                                     SchedulerParts& parts) {
  BatcherOptions options;
  options.name = parts.name;
  options.max_batch_size = batching.max_batch_size();
  options.preferred_batch_sizes.assign(batching.preferred_batch_size().begin(),
                                       batching.preferred_batch_size().end());
  options.max_queue_delay = absl::Microseconds(batching.max_queue_delay_us());
  options.max_queue_size = batching.max_queue_size();
  options.bulk_batch_size_under_interactive =
      batching.bulk_batch_size_under_interactive();
  options.interactive_window =
      absl::Milliseconds(batching.interactive_window_ms());
  options.max_arrival_wait = absl::Microseconds(batching.max_arrival_wait_us());
  options.input_shape = std::move(parts.input_shape);
  options.on_batch = std::move(parts.on_batch);
  return options;
}

}  // namespace

SchedulerPolicy PolicyOf(const v1::BatchingConfig& batching) {
  if (batching.per_request()) return SchedulerPolicy::kPerRequest;
  return SchedulerPolicy::kDynamic;
}

absl::StatusOr<std::unique_ptr<Scheduler>> CreateScheduler(
    const v1::BatchingConfig& batching, SchedulerParts parts) {
  switch (PolicyOf(batching)) {
    case SchedulerPolicy::kDynamic:
      return DynamicBatcher::Create(DynamicBatcherOptions(batching, parts),
                                    std::move(parts.runners));
    case SchedulerPolicy::kPerRequest: {
      BatcherOptions options = DynamicBatcherOptions(batching, parts);
      options.per_request = true;
      return DynamicBatcher::Create(std::move(options),
                                    std::move(parts.runners));
    }
  }
  return absl::InternalError("unknown scheduling policy");
}

}  // namespace audiotag
