#ifndef AUDIOTAG_SRC_BATCHING_BATCH_RUNNER_H_
#define AUDIOTAG_SRC_BATCHING_BATCH_RUNNER_H_

// What a scheduler runs: one model instance that turns a batch of segments
// into the model's outputs. The TorchScript runner (src/model/) implements it;
// the batching tests use fakes.

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/tensor.h"

namespace audiotag {

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;

  // `batch`: [B, ...segment shape], B >= 1, handed over: the runner may
  // feed its storage to the model as is (no copy) and overwrite it. Returns
  // one tensor per declared output of the model, in config order, each
  // [B, ...]. Errors are the model's fault (INTERNAL) or a bad batch
  // (INVALID_ARGUMENT). Called from one thread at a time per runner.
  virtual absl::StatusOr<std::vector<Tensor>> Run(Tensor batch) = 0;

  // How much of the last Run went into the front-end (features), for
  // metrics; zero when the runner does not measure it. Called from the
  // thread that called Run.
  virtual absl::Duration last_frontend_time() const {
    return absl::ZeroDuration();
  }
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_BATCH_RUNNER_H_
