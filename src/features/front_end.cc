#include "src/features/front_end.h"

#include <torch/torch.h>

#include <algorithm>
#include <exception>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/tensor.h"
#include "src/features/log_mel_front_end.h"
#include "src/features/waveform_front_end.h"

namespace audiotag {

absl::StatusOr<std::unique_ptr<FrontEnd>> FrontEnd::Create(
    const v1::InputConfig& config) {
  if (config.sample_rate() <= 0) {
    return absl::InvalidArgumentError("input.sample_rate must be > 0");
  }
  switch (config.front_end_case()) {
    case v1::InputConfig::kWaveform:
      return CreateWaveformFrontEnd(config);
    case v1::InputConfig::kLogMel:
      return CreateLogMelFrontEnd(config);
    default:
      return absl::InvalidArgumentError(
          "input.front_end must be set (waveform or log_mel)");
  }
}

absl::StatusOr<Tensor> FrontEnd::ForwardCpu(const Tensor& waveforms) const {
  if (waveforms.shape.size() != 2 ||
      static_cast<int64_t>(waveforms.data.size()) != waveforms.NumElements()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "front-end input must be [B, samples] with matching data, "
        "got shape ",
        waveforms.ShapeString(), " and ", waveforms.data.size(), " values"));
  }
  try {
    // Forward never writes to its input, so the caller's data is borrowed.
    const at::Tensor in =
        torch::from_blob(const_cast<float*>(waveforms.data.data()),
                         waveforms.shape, torch::kFloat32);
    const at::Tensor out = Forward(in).contiguous();
    Tensor result;
    result.shape.assign(out.sizes().begin(), out.sizes().end());
    result.data.resize(out.numel());
    std::copy_n(out.data_ptr<float>(), out.numel(), result.data.begin());
    return result;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("front-end failed: ", e.what_without_backtrace()));
  }
}

}  // namespace audiotag
