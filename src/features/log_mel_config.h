#ifndef AUDIOTAG_SRC_FEATURES_LOG_MEL_CONFIG_H_
#define AUDIOTAG_SRC_FEATURES_LOG_MEL_CONFIG_H_

// The log-mel front-end's parameters with every default resolved, the checks
// that reject a bad config, and the framing arithmetic. Torch-free, so the
// rules can be read and tested without LibTorch.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"

namespace audiotag {

struct LogMelParams {
  int64_t sample_rate = 0;  // Hz
  int64_t n_fft = 0;
  int64_t win_length = 0;  // <= n_fft
  int64_t hop_length = 0;
  v1::WindowType window = v1::WINDOW_HANN_PERIODIC;
  bool center = false;
  int64_t center_pad = 0;  // samples each side when center; resolved
  v1::PadMode pad_mode = v1::PAD_REFLECT;
  float pre_emphasis = 0;
  v1::PreEmphasisMode pre_emphasis_mode = v1::PRE_EMPHASIS_PER_FRAME;
  bool remove_dc = false;
  bool subtract_mean = false;
  int64_t n_mels = 0;
  double f_min = 0;  // Hz
  double f_max = 0;  // Hz; resolved (never 0)
  v1::MelScale mel_scale = v1::MEL_HTK;
  v1::MelNorm mel_norm = v1::MEL_NORM_NONE;
  bool zero_dc_bin = false;
  float power = 2;
  v1::LogType log = v1::LOG_NATURAL;
  float log_offset = 0;
  float log_floor = 0;
  bool db_relative_to_max = false;
  float top_db = 0;
  float norm_mean = 0;
  float norm_std = 1;
  int64_t num_frames = 0;                    // 0 = as computed
  v1::TensorLayout layout = v1::LAYOUT_BTF;  // resolved (never DEFAULT)

  int64_t n_bins() const { return n_fft / 2 + 1; }
  // True when framing needs explicit frames (per-frame DC removal or
  // pre-emphasis) rather than torch::stft directly.
  bool per_frame_ops() const {
    return remove_dc || (pre_emphasis != 0 &&
                         pre_emphasis_mode == v1::PRE_EMPHASIS_PER_FRAME);
  }
  // Samples the framing sees for `samples` input samples (waveform
  // pre-emphasis drops one).
  int64_t FramedSamples(int64_t samples) const;
  // Frames computed from `samples` input samples, before num_frames:
  //   center:  1 + (n + 2 * center_pad - n_fft) / hop
  //   else:    1 + (n - win_length) / hop   (Kaldi snip_edges, VGGish)
  // and 0 when the input is shorter than one frame.
  int64_t ComputedFrames(int64_t samples) const;
  // Frames in the output (num_frames when set).
  int64_t OutputFrames(int64_t samples) const;
  // Per-segment output shape (no batch axis) in `layout`.
  std::vector<int64_t> OutputShape(int64_t samples) const;
};

// Validates `config` (which must hold a log_mel front-end) and resolves its
// defaults. INVALID_ARGUMENT names the field, e.g.
// "input.log_mel.hop_length must be > 0".
absl::StatusOr<LogMelParams> ResolveLogMelConfig(const v1::InputConfig& config);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_LOG_MEL_CONFIG_H_
