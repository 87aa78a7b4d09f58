#include "src/features/log_mel_config.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"
#include "src/features/mel_filterbank.h"

namespace audiotag {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("input.log_mel.", field, " ", what));
}

bool IsLogMelLayout(v1::TensorLayout layout) {
  switch (layout) {
    case v1::LAYOUT_DEFAULT:
    case v1::LAYOUT_BTF:
    case v1::LAYOUT_BCTF:
    case v1::LAYOUT_BFT:
    case v1::LAYOUT_BCFT:
      return true;
    default:
      return false;
  }
}

// Sizes and framing.
absl::Status ResolveFraming(const v1::LogMelFrontEnd& c, LogMelParams& p) {
  if (c.n_fft() <= 0) return Invalid("n_fft", "must be > 0");
  // Real front-ends use 2048 at most; the cap keeps a typo from asking for a
  // filterbank of gigabytes.
  constexpr int kMaxFft = 65536;
  if (c.n_fft() > kMaxFft) {
    return Invalid("n_fft",
                   absl::StrCat("(", c.n_fft(), ") must be <= ", kMaxFft));
  }
  if (c.hop_length() <= 0) return Invalid("hop_length", "must be > 0");
  if (c.win_length() < 0) return Invalid("win_length", "must be >= 0");
  if (c.win_length() > c.n_fft()) {
    return Invalid("win_length",
                   absl::StrCat("(", c.win_length(), ") must be <= n_fft (",
                                c.n_fft(), ")"));
  }
  if (!v1::WindowType_IsValid(c.window())) {
    return Invalid("window", "is not a known WindowType");
  }
  if (!v1::PadMode_IsValid(c.pad_mode())) {
    return Invalid("pad_mode", "is not a known PadMode");
  }
  if (c.center_pad() < 0) return Invalid("center_pad", "must be >= 0");
  if (c.center_pad() != 0 && !c.center()) {
    return Invalid("center_pad", "needs center: true");
  }
  if (c.num_frames() < 0) return Invalid("num_frames", "must be >= 0");
  p.n_fft = c.n_fft();
  p.win_length = c.win_length() == 0 ? c.n_fft() : c.win_length();
  p.hop_length = c.hop_length();
  p.window = c.window();
  p.center = c.center();
  p.center_pad = c.center_pad() == 0 ? c.n_fft() / 2 : c.center_pad();
  p.pad_mode = c.pad_mode();
  p.num_frames = c.num_frames();
  return absl::OkStatus();
}

// Waveform and per-frame conditioning.
absl::Status ResolveConditioning(const v1::LogMelFrontEnd& c, LogMelParams& p) {
  if (!std::isfinite(c.pre_emphasis()) || c.pre_emphasis() < 0 ||
      c.pre_emphasis() > 1) {
    return Invalid("pre_emphasis", "must be in [0, 1]");
  }
  if (!v1::PreEmphasisMode_IsValid(c.pre_emphasis_mode())) {
    return Invalid("pre_emphasis_mode", "is not a known PreEmphasisMode");
  }
  p.pre_emphasis = c.pre_emphasis();
  p.pre_emphasis_mode = c.pre_emphasis_mode();
  p.remove_dc = c.remove_dc();
  p.subtract_mean = c.subtract_mean();
  return absl::OkStatus();
}

// The filterbank: checked by building it once.
absl::Status ResolveMel(const v1::LogMelFrontEnd& c, int64_t rate,
                        LogMelParams& p) {
  if (c.n_mels() <= 0) return Invalid("n_mels", "must be > 0");
  if (!v1::MelScale_IsValid(c.mel_scale())) {
    return Invalid("mel_scale", "is not a known MelScale");
  }
  if (!v1::MelNorm_IsValid(c.mel_norm())) {
    return Invalid("mel_norm", "is not a known MelNorm");
  }
  const double nyquist = static_cast<double>(rate) / 2.0;
  if (!std::isfinite(c.f_min()) || c.f_min() < 0) {
    return Invalid("f_min", "must be >= 0");
  }
  if (!std::isfinite(c.f_max()) || c.f_max() < 0 || c.f_max() > nyquist) {
    return Invalid("f_max", absl::StrCat("(", c.f_max(),
                                         ") must be in [0, sample_rate / 2 = ",
                                         nyquist, "]"));
  }
  p.n_mels = c.n_mels();
  p.f_min = c.f_min();
  p.f_max = c.f_max() == 0 ? nyquist : c.f_max();
  if (p.f_min >= p.f_max) {
    return Invalid(
        "f_min",
        absl::StrCat("(", p.f_min, ") must be below f_max (", p.f_max, ")"));
  }
  p.mel_scale = c.mel_scale();
  p.mel_norm = c.mel_norm();
  p.zero_dc_bin = c.zero_dc_bin();
  // Refused before any bank (n_bins * n_mels floats) is built.
  if (p.n_mels > p.n_bins()) {
    return Invalid(
        "n_mels",
        absl::StrCat("(", p.n_mels, ") is too many for n_fft ", p.n_fft,
                     ": at most n_fft / 2 + 1 = ", p.n_bins(), " bands"));
  }
  // A band narrower than one FFT bin (OpenL3 mel256: 256 HTK bands, n_fft 2048
  // and 48 kHz) is all zeros, as librosa and torchaudio build it (both only
  // warn): its log is the floor. Published models were trained with such
  // banks, so it is not an error.
  return absl::OkStatus();
}

// Magnitude, log and normalisation.
absl::Status ResolveScaling(const v1::LogMelFrontEnd& c, LogMelParams& p) {
  p.power = c.has_power() ? c.power() : 2.0f;
  if (!std::isfinite(p.power) || p.power <= 0) {
    return Invalid("power", "must be > 0");
  }
  if (!v1::LogType_IsValid(c.log())) {
    return Invalid("log", "is not a known LogType");
  }
  if (!std::isfinite(c.log_offset()) || c.log_offset() < 0) {
    return Invalid("log_offset", "must be >= 0");
  }
  if (!std::isfinite(c.log_floor()) || c.log_floor() < 0) {
    return Invalid("log_floor", "must be >= 0");
  }
  if (c.log() != v1::LOG_NONE && c.log_offset() == 0 && c.log_floor() == 0) {
    return Invalid("log_floor", "or log_offset must be > 0 (log of zero)");
  }
  if (c.log() != v1::LOG_DB && (c.db_relative_to_max() || c.top_db() != 0)) {
    return Invalid("db_relative_to_max", "and top_db need log: LOG_DB");
  }
  if (!std::isfinite(c.top_db()) || c.top_db() < 0) {
    return Invalid("top_db", "must be >= 0");
  }
  p.norm_std = c.has_norm_std() ? c.norm_std() : 1.0f;
  if (!std::isfinite(p.norm_std) || p.norm_std == 0) {
    return Invalid("norm_std", "must be finite and non-zero");
  }
  if (!std::isfinite(c.norm_mean())) {
    return Invalid("norm_mean", "must be finite");
  }
  p.log = c.log();
  p.log_offset = c.log_offset();
  p.log_floor = c.log_floor();
  p.db_relative_to_max = c.db_relative_to_max();
  p.top_db = c.top_db();
  p.norm_mean = c.norm_mean();
  return absl::OkStatus();
}

}  // namespace

int64_t LogMelParams::FramedSamples(int64_t samples) const {
  const bool drops_one = pre_emphasis != 0 &&
                         pre_emphasis_mode == v1::PRE_EMPHASIS_WAVEFORM &&
                         samples > 0;
  return drops_one ? samples - 1 : samples;
}

int64_t LogMelParams::ComputedFrames(int64_t samples) const {
  const int64_t n = FramedSamples(samples);
  const int64_t span = center ? n + 2 * center_pad - n_fft : n - win_length;
  return span < 0 ? 0 : 1 + span / hop_length;
}

int64_t LogMelParams::OutputFrames(int64_t samples) const {
  return num_frames > 0 ? num_frames : ComputedFrames(samples);
}

std::vector<int64_t> LogMelParams::OutputShape(int64_t samples) const {
  const int64_t t = OutputFrames(samples);
  const int64_t f = n_mels;
  switch (layout) {
    case v1::LAYOUT_BCTF:
      return {1, t, f};
    case v1::LAYOUT_BFT:
      return {f, t};
    case v1::LAYOUT_BCFT:
      return {1, f, t};
    default:
      return {t, f};
  }
}

absl::StatusOr<LogMelParams> ResolveLogMelConfig(
    const v1::InputConfig& config) {
  if (config.sample_rate() <= 0) {
    return absl::InvalidArgumentError("input.sample_rate must be > 0");
  }
  if (!config.has_log_mel()) {
    return absl::InvalidArgumentError("input.log_mel must be set");
  }
  if (!IsLogMelLayout(config.layout())) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.layout ", v1::TensorLayout_Name(config.layout()),
                     " is not a log-mel layout (BTF, BCTF, BFT, BCFT)"));
  }
  LogMelParams p;
  p.sample_rate = config.sample_rate();
  p.layout =
      config.layout() == v1::LAYOUT_DEFAULT ? v1::LAYOUT_BTF : config.layout();
  const v1::LogMelFrontEnd& c = config.log_mel();
  RETURN_IF_ERROR(ResolveFraming(c, p));
  RETURN_IF_ERROR(ResolveConditioning(c, p));
  RETURN_IF_ERROR(ResolveMel(c, p.sample_rate, p));
  RETURN_IF_ERROR(ResolveScaling(c, p));
  return p;
}

}  // namespace audiotag
