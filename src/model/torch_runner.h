#ifndef AUDIOTAG_SRC_MODEL_TORCH_RUNNER_H_
#define AUDIOTAG_SRC_MODEL_TORCH_RUNNER_H_

// One instance of a TorchScript model: the model's front-end followed by its
// network, on one device, behind the BatchRunner interface the schedulers
// call. This header is LibTorch-free (pimpl); torch_runner.cc is the one file
// of the model layer that calls LibTorch and the one place that turns
// c10::Error into absl::Status.
//
// Thread-safety: Run is called from one thread at a time (the scheduler gives
// each instance its own thread). Different TorchRunners, even of the same
// model, are independent: each holds its own copy of the module.
//
// Intra-op threads: at::set_num_threads is process-global in LibTorch 1.13
// (one OpenMP/MKL pool setting shared by every thread that has not yet run an
// op), so a per-instance setting cannot be honoured exactly. audiotag sets it
// once per process (SetProcessIntraOpThreads, from
// RepositoryOptions::default_intra_op_threads); InstanceConfig.intra_op_threads
// is validated and shown with the config, but no runner applies it.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/batching/batch_runner.h"
#include "src/common/tensor.h"

namespace audiotag {

class TorchRunner : public BatchRunner {
 public:
  // Loads `model_path` (a TorchScript file) onto `config.instances.device`,
  // builds the front-end from `config.input`, and runs
  // `config.warmup_batches` batches of zeros at max_batch_size and at 1, so
  // a model whose outputs do not match `config` fails here rather than at the
  // first request. `config` must be normalized (NormalizeModelConfig).
  // Errors: NOT_FOUND (no file), INVALID_ARGUMENT (not TorchScript, bad
  // front-end), FAILED_PRECONDITION (CUDA requested but not available),
  // INTERNAL (warm-up failed); messages name the file.
  static absl::StatusOr<std::unique_ptr<TorchRunner>> Create(
      const v1::ModelConfig& config, const std::string& model_path);

  // The same with the per-segment input shape (no batch axis) spelled out.
  // For an audio model it must be {window_samples} (what the overload above
  // uses). For a pipeline stage (config.input.from_model) it is the source
  // output's per-segment shape ({sum of the dims} for a stage on several
  // sources, input.from_models): the stage has no front-end, its network gets
  // [B, ...input_shape], and warm-up feeds zeros of that shape. An empty
  // `input_shape` for a stage means "unknown": batches of any shape are
  // accepted and warm-up is skipped.
  static absl::StatusOr<std::unique_ptr<TorchRunner>> Create(
      const v1::ModelConfig& config, const std::string& model_path,
      std::vector<int64_t> input_shape);

  ~TorchRunner() override;

  // `batch`: [B, window_samples] waveforms (a stage: [B, ...input_shape]),
  // 1 <= B <= max_batch_size. Returns
  // one host tensor per config output, in config order: [B, dim], or
  // [B, T, dim] for frame-wise ACTIVATIONS, after the output's activation.
  // INVALID_ARGUMENT for a bad batch shape; INTERNAL for anything the model
  // does wrong (naming the model and, for shape mismatches, the output).
  absl::StatusOr<std::vector<Tensor>> Run(Tensor batch) override;

  absl::Duration last_frontend_time() const override;

  // Per output, its per-segment shape (no batch axis) from the last warm-up
  // batch; empty entries when warm-up was skipped. What a stage fed by this
  // model will get.
  const std::vector<std::vector<int64_t>>& output_shapes() const;

  // The device the module lives on ("cpu", "cuda:0").
  const std::string& device() const;

 private:
  struct Impl;
  explicit TorchRunner(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

// Sets LibTorch's process-wide intra-op thread count when `threads` > 0 (0
// keeps LibTorch's default). Call once, before loading models.
void SetProcessIntraOpThreads(int threads);

// Whether this LibTorch build sees a CUDA device.
bool CudaAvailable();

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_TORCH_RUNNER_H_
