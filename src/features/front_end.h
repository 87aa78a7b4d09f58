#ifndef AUDIOTAG_SRC_FEATURES_FRONT_END_H_
#define AUDIOTAG_SRC_FEATURES_FRONT_END_H_

// A model's front-end: turns a batch of equal-length mono waveform segments
// into the tensor its network takes (the raw waveform, or a log-mel
// spectrogram with every parameter from the model's InputConfig), laid out as
// the config's TensorLayout says. It runs with LibTorch tensor operations, on
// whatever device its input is on, so a GPU instance computes its features on
// the GPU.
//
// Thread-safety: a FrontEnd is immutable after Create; Forward may be called
// from many threads at once.

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"

namespace at {
class Tensor;
}  // namespace at

namespace audiotag {

struct Tensor;

class FrontEnd {
 public:
  // Validates `config` (INVALID_ARGUMENT naming the bad field) and builds
  // the front-end (window, filterbank).
  static absl::StatusOr<std::unique_ptr<FrontEnd>> Create(
      const v1::InputConfig& config);

  virtual ~FrontEnd() = default;

  // `waveforms`: float [B, samples]. Returns the network input, batch first,
  // on the same device. Throws c10::Error on a LibTorch failure; callers at the
  // LibTorch boundary catch it.
  virtual at::Tensor Forward(const at::Tensor& waveforms) const = 0;

  // Shape of one segment's features (no batch axis) for `samples` samples.
  virtual std::vector<int64_t> OutputShape(int64_t samples) const = 0;

  // Host convenience (tests, tools): `waveforms` [B, samples] on the CPU.
  absl::StatusOr<Tensor> ForwardCpu(const Tensor& waveforms) const;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_FRONT_END_H_
