#ifndef AUDIOTAG_SRC_FEATURES_WAVEFORM_FRONT_END_H_
#define AUDIOTAG_SRC_FEATURES_WAVEFORM_FRONT_END_H_

// The raw-waveform FrontEnd (the network computes its own features, as
// PANNs and torchopenl3 do). Internal to src/features.

#include <memory>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/features/front_end.h"

namespace audiotag {

// Validates `config` (input.waveform set; layout DEFAULT, BT or BCT).
// Forward multiplies by `gain` (default 1, skipped when 1) and adds the
// channel axis for BCT.
absl::StatusOr<std::unique_ptr<FrontEnd>> CreateWaveformFrontEnd(
    const v1::InputConfig& config);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_WAVEFORM_FRONT_END_H_
