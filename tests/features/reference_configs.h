#ifndef AUDIOTAG_TESTS_FEATURES_REFERENCE_CONFIGS_H_
#define AUDIOTAG_TESTS_FEATURES_REFERENCE_CONFIGS_H_

// The reference models' front-ends exactly as docs/front_ends.md spells them
// out (keep the two in step), as InputConfig text.

namespace audiotag::testing {

inline constexpr char kVggishConfig[] = R"pb(
  sample_rate: 16000
  log_mel {
    n_fft: 512
    win_length: 400
    hop_length: 160
    window: WINDOW_HANN_PERIODIC
    center: false
    n_mels: 64
    f_min: 125
    f_max: 7500
    mel_scale: MEL_KALDI
    zero_dc_bin: true
    power: 1
    log: LOG_NATURAL
    log_offset: 0.01
  }
  layout: LAYOUT_BCTF
)pb";

inline constexpr char kPannsLogMelConfig[] = R"pb(
  sample_rate: 32000
  log_mel {
    n_fft: 1024
    win_length: 1024
    hop_length: 320
    window: WINDOW_HANN_PERIODIC
    center: true
    pad_mode: PAD_REFLECT
    n_mels: 64
    f_min: 50
    f_max: 14000
    mel_scale: MEL_SLANEY
    mel_norm: MEL_NORM_SLANEY
    power: 2
    log: LOG_DB
    log_floor: 1e-10
  }
  layout: LAYOUT_BCTF
)pb";

inline constexpr char kPasstConfig[] = R"pb(
  sample_rate: 32000
  log_mel {
    n_fft: 1024
    win_length: 800
    hop_length: 320
    window: WINDOW_HANN_SYMMETRIC
    center: true
    pad_mode: PAD_REFLECT
    pre_emphasis: 0.97
    pre_emphasis_mode: PRE_EMPHASIS_WAVEFORM
    n_mels: 128
    f_min: 0
    f_max: 15000
    mel_scale: MEL_KALDI
    power: 2
    log: LOG_NATURAL
    log_offset: 1e-5
    norm_mean: -4.5
    norm_std: 5
    num_frames: 998
  }
  layout: LAYOUT_BCFT
)pb";

inline constexpr char kAstConfig[] = R"pb(
  sample_rate: 16000
  log_mel {
    n_fft: 512
    win_length: 400
    hop_length: 160
    window: WINDOW_HANN_SYMMETRIC
    center: false
    pre_emphasis: 0.97
    pre_emphasis_mode: PRE_EMPHASIS_PER_FRAME
    remove_dc: true
    subtract_mean: true
    n_mels: 128
    f_min: 20
    mel_scale: MEL_KALDI
    power: 2
    log: LOG_NATURAL
    log_floor: 1.1920929e-07
    norm_mean: -4.2677393
    norm_std: 9.1379948
    num_frames: 1024
  }
  layout: LAYOUT_BTF
)pb";

inline constexpr char kOpenL3Config[] = R"pb(
  sample_rate: 48000
  log_mel {
    n_fft: 2048
    hop_length: 242
    window: WINDOW_HANN_PERIODIC
    center: true
    pad_mode: PAD_CONSTANT
    center_pad: 982
    n_mels: 128
    f_min: 0
    f_max: 24000
    mel_scale: MEL_HTK
    mel_norm: MEL_NORM_SLANEY
    power: 2
    log: LOG_DB
    log_floor: 1e-20
    db_relative_to_max: true
    top_db: 160
    norm_std: 2
  }
  layout: LAYOUT_BCFT
)pb";

inline constexpr char kEastMtatConfig[] = R"pb(
  sample_rate: 16000
  log_mel {
    n_fft: 1024
    win_length: 800
    hop_length: 320
    window: WINDOW_HANN_SYMMETRIC
    center: true
    pad_mode: PAD_REFLECT
    pre_emphasis: 0.97
    pre_emphasis_mode: PRE_EMPHASIS_WAVEFORM
    n_mels: 96
    f_min: 0
    f_max: 8000
    mel_scale: MEL_KALDI
    power: 2
    log: LOG_NATURAL
    log_offset: 1e-5
    norm_mean: -3.7
    norm_std: 3.1
  }
  layout: LAYOUT_BFT
)pb";

inline constexpr char kEastOpenMicConfig[] = R"pb(
  sample_rate: 32000
  log_mel {
    n_fft: 1024
    win_length: 800
    hop_length: 320
    window: WINDOW_HANN_SYMMETRIC
    center: true
    pad_mode: PAD_REFLECT
    pre_emphasis: 0.97
    pre_emphasis_mode: PRE_EMPHASIS_WAVEFORM
    n_mels: 128
    f_min: 0
    f_max: 16000
    mel_scale: MEL_KALDI
    power: 2
    log: LOG_NATURAL
    log_offset: 1e-5
    norm_mean: -3.7
    norm_std: 3.1
  }
  layout: LAYOUT_BFT
)pb";

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_FEATURES_REFERENCE_CONFIGS_H_
