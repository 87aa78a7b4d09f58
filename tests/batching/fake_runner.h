#ifndef AUDIOTAG_TESTS_BATCHING_FAKE_RUNNER_H_
#define AUDIOTAG_TESTS_BATCHING_FAKE_RUNNER_H_

// A fake model for the batching tests. Its runners take [B, N] batches whose
// rows start with a "tag" (see Segment()) and return three outputs:
//   0: the input times two, [B, N]
//   1: each row's index in its batch, [B, 1]
//   2: each row's tag, [B]
// The model records every batch it ran, can hold runs at a gate so a test can
// fill the queue deterministically, can fail, and can require several runs to
// be in progress at once (to prove instances run concurrently).
//
// Thread-safety: thread-safe. Runners share the model through a shared_ptr,
// so either may outlive the other.

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/batching/batch_runner.h"
#include "src/common/tensor.h"

namespace audiotag::testing {

// How long tests wait for something that should happen; generous so a loaded
// machine passes, and only reached when a test fails.
inline constexpr absl::Duration kWait = absl::Seconds(30);

// A segment [2] = {tag, 0.5}.
Tensor Segment(float tag);
// The tag of a segment of request `id` at `index`, and back.
float Tag(uint64_t id, int64_t index);
uint64_t TagRequest(float tag);

class FakeModel : public std::enable_shared_from_this<FakeModel> {
 public:
  static std::shared_ptr<FakeModel> Create();

  // `count` runners sharing this model.
  std::vector<std::unique_ptr<BatchRunner>> NewRunners(int count);

  // While closed, Run records its batch and then waits for OpenGate().
  void CloseGate() ABSL_LOCKS_EXCLUDED(mu_);
  void OpenGate() ABSL_LOCKS_EXCLUDED(mu_);
  // Every later Run returns `status` (OK: runs normally).
  void FailWith(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs wait until `count` runs have been in progress at the same time.
  void RequireConcurrency(int count) ABSL_LOCKS_EXCLUDED(mu_);

  // True once `count` runs have started.
  bool WaitForRunsStarted(int count) ABSL_LOCKS_EXCLUDED(mu_);
  // Tags of each batch's rows, in the order the runs started.
  std::vector<std::vector<float>> batches() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t rows_run() const ABSL_LOCKS_EXCLUDED(mu_);
  int max_in_flight() const ABSL_LOCKS_EXCLUDED(mu_);

  absl::StatusOr<std::vector<Tensor>> Run(const Tensor& batch)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  FakeModel() = default;
  bool MayFinish() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Admit(const Tensor& batch) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  bool gate_open_ ABSL_GUARDED_BY(mu_) = true;
  absl::Status fail_with_ ABSL_GUARDED_BY(mu_);
  int required_concurrency_ ABSL_GUARDED_BY(mu_) = 1;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::vector<float>> batches_ ABSL_GUARDED_BY(mu_);
  int64_t rows_run_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_BATCHING_FAKE_RUNNER_H_
