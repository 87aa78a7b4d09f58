#include "src/features/waveform_front_end.h"

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace audiotag {
namespace {

class WaveformFrontEndImpl final : public FrontEnd {
 public:
  WaveformFrontEndImpl(float gain, bool channel_axis)
      : gain_(gain), channel_axis_(channel_axis) {}

  at::Tensor Forward(const at::Tensor& waveforms) const override {
    TORCH_CHECK(waveforms.dim() == 2,
                "front-end input must be [B, samples], got ",
                waveforms.sizes());
    at::Tensor x = waveforms.to(torch::kFloat32);
    if (gain_ != 1.0f) x = x * gain_;
    return channel_axis_ ? x.unsqueeze(1) : x;
  }

  std::vector<int64_t> OutputShape(int64_t samples) const override {
    if (channel_axis_) return {1, samples};
    return {samples};
  }

 private:
  const float gain_;
  const bool channel_axis_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<FrontEnd>> CreateWaveformFrontEnd(
    const v1::InputConfig& config) {
  if (config.sample_rate() <= 0) {
    return absl::InvalidArgumentError("input.sample_rate must be > 0");
  }
  if (!config.has_waveform()) {
    return absl::InvalidArgumentError("input.waveform must be set");
  }
  const v1::TensorLayout layout = config.layout();
  if (layout != v1::LAYOUT_DEFAULT && layout != v1::LAYOUT_BT &&
      layout != v1::LAYOUT_BCT) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.layout ", v1::TensorLayout_Name(layout),
                     " is not a waveform layout (BT, BCT)"));
  }
  const v1::WaveformFrontEnd& c = config.waveform();
  const float gain = c.has_gain() ? c.gain() : 1.0f;
  if (!std::isfinite(gain)) {
    return absl::InvalidArgumentError("input.waveform.gain must be finite");
  }
  return std::make_unique<WaveformFrontEndImpl>(gain, layout == v1::LAYOUT_BCT);
}

}  // namespace audiotag
