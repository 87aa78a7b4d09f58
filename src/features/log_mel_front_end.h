#ifndef AUDIOTAG_SRC_FEATURES_LOG_MEL_FRONT_END_H_
#define AUDIOTAG_SRC_FEATURES_LOG_MEL_FRONT_END_H_

// The log-mel FrontEnd. Internal to src/features: everyone else goes through
// FrontEnd::Create.

#include <memory>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/features/front_end.h"

namespace audiotag {

// Validates `config` (input.log_mel set) and builds the window and the
// filterbank once. Forward, per batch [B, samples]:
//   1. subtract_mean: x -= mean(x) per segment;
//   2. PRE_EMPHASIS_WAVEFORM: y[t] = x[t + 1] - c x[t] (one sample shorter);
//   3. framing: center pads center_pad each side (pad_mode) and places the
//      window in the middle of each n_fft frame (torch.stft); otherwise
//      frames of win_length start at 0, hop, ... (Kaldi snip_edges);
//   4. per frame (Kaldi order): remove_dc, PRE_EMPHASIS_PER_FRAME with the
//      first sample against itself, then the window; zero-padded to n_fft;
//   5. |FFT| ** power, times the filterbank;
//   6. log (natural or dB) of max(x, log_floor) + log_offset, then for dB
//      optionally minus the segment's max and clamped at -top_db (without
//      db_relative_to_max, top_db clamps at max - top_db, as librosa does);
//   7. num_frames: zero-pad or crop frames; 8. (x - norm_mean) / norm_std;
//   9. the layout.
// A row whose tail is NaN is a feature-padded segment
// (LAST_SEGMENT_PAD_FEATURES): steps 1-6 run on the samples before the first
// NaN alone, and its frames are zero-padded to a full row's count before
// step 7, so step 8 normalises the zeros as AST's loader does.
absl::StatusOr<std::unique_ptr<FrontEnd>> CreateLogMelFrontEnd(
    const v1::InputConfig& config);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_LOG_MEL_FRONT_END_H_
