#include "src/features/log_mel_front_end.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "src/common/status_macros.h"
#include "src/features/log_mel_config.h"
#include "src/features/mel_filterbank.h"
#include "src/features/window.h"

namespace audiotag {
namespace {

// The constant tensors of one front-end, on one device.
struct Constants {
  torch::Tensor window;  // [win_length]
  torch::Tensor bank;    // [n_bins, n_mels]
};

torch::Tensor FromVector(const std::vector<float>& v,
                         std::vector<int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32)
      .clone();
}

at::Tensor Pad1d(const at::Tensor& x, int64_t left, int64_t right,
                 v1::PadMode mode) {
  switch (mode) {
    case v1::PAD_REFLECT:
      return at::reflection_pad1d(x.unsqueeze(1), {left, right}).squeeze(1);
    case v1::PAD_REPLICATE:
      return at::replication_pad1d(x.unsqueeze(1), {left, right}).squeeze(1);
    default:
      return at::constant_pad_nd(x, {left, right});
  }
}

class LogMelFrontEndImpl final : public FrontEnd {
 public:
  LogMelFrontEndImpl(LogMelParams params, Constants cpu)
      : p_(std::move(params)), cpu_(std::move(cpu)) {}

  at::Tensor Forward(const at::Tensor& waveforms) const override;
  std::vector<int64_t> OutputShape(int64_t samples) const override {
    return p_.OutputShape(samples);
  }

 private:
  Constants On(const c10::Device& device) const;
  // subtract_mean and waveform pre-emphasis: [B, n] -> [B, n'] float.
  at::Tensor Condition(const at::Tensor& waveforms) const;
  // Power (|X| ** power) spectrum [B, T, n_bins].
  at::Tensor Spectrum(const at::Tensor& x, int64_t frames,
                      const Constants& k) const;
  at::Tensor Log(at::Tensor mel) const;
  // Steps 1-6 for rows of equal length: [B, n] -> [B, frames(n), n_mels].
  at::Tensor LogMel(const at::Tensor& waveforms, const Constants& k) const;
  at::Tensor Finish(at::Tensor logmel) const;

  const LogMelParams p_;
  const Constants cpu_;
  mutable absl::Mutex mu_;
  // Copies of cpu_ on other devices, made on first use.
  mutable std::vector<std::pair<c10::Device, Constants>> on_device_
      ABSL_GUARDED_BY(mu_);
};

Constants LogMelFrontEndImpl::On(const c10::Device& device) const {
  if (device == cpu_.window.device()) return cpu_;
  absl::MutexLock lock(&mu_);
  for (const auto& [d, k] : on_device_) {
    if (d == device) return k;
  }
  Constants k{cpu_.window.to(device), cpu_.bank.to(device)};
  on_device_.emplace_back(device, k);
  return k;
}

at::Tensor LogMelFrontEndImpl::Condition(const at::Tensor& waveforms) const {
  at::Tensor x = waveforms.to(torch::kFloat32);
  if (p_.subtract_mean) x = x - x.mean(/*dim=*/{1}, /*keepdim=*/true);
  if (p_.pre_emphasis != 0 &&
      p_.pre_emphasis_mode == v1::PRE_EMPHASIS_WAVEFORM) {
    const int64_t n = x.size(1);
    x = x.narrow(1, 1, n - 1) - p_.pre_emphasis * x.narrow(1, 0, n - 1);
  }
  return x;
}

at::Tensor LogMelFrontEndImpl::Spectrum(const at::Tensor& x, int64_t frames,
                                        const Constants& k) const {
  const int64_t win = p_.win_length;
  const int64_t n_fft = p_.n_fft;
  // Offset of the window inside an n_fft frame, as torch.stft centres it.
  const int64_t inset = (n_fft - win) / 2;
  at::Tensor spec;
  if (!p_.per_frame_ops()) {
    at::Tensor in = p_.center
                        ? Pad1d(x, p_.center_pad, p_.center_pad, p_.pad_mode)
                        : at::constant_pad_nd(x, {inset, n_fft - win - inset});
    spec = torch::stft(in, n_fft, p_.hop_length, win, k.window,
                       /*center=*/false, /*pad_mode=*/"constant",
                       /*normalized=*/false, /*onesided=*/true,
                       /*return_complex=*/true)
               .narrow(2, 0, frames)
               .transpose(1, 2);
  } else {
    at::Tensor in = x;
    int64_t start = 0;
    if (p_.center) {
      in = Pad1d(x, p_.center_pad, p_.center_pad, p_.pad_mode);
      start = inset;
    }
    at::Tensor f = in.narrow(1, start, in.size(1) - start)
                       .unfold(1, win, p_.hop_length)
                       .narrow(1, 0, frames);
    if (p_.remove_dc) f = f - f.mean(/*dim=*/{2}, /*keepdim=*/true);
    if (p_.pre_emphasis != 0 &&
        p_.pre_emphasis_mode == v1::PRE_EMPHASIS_PER_FRAME) {
      at::Tensor previous =
          at::cat({f.narrow(2, 0, 1), f.narrow(2, 0, win - 1)}, 2);
      f = f - p_.pre_emphasis * previous;
    }
    spec = torch::fft::rfft(f * k.window, n_fft, /*dim=*/2);
  }
  if (p_.power == 2.0f) return at::view_as_real(spec).square().sum(-1);
  if (p_.power == 1.0f) return spec.abs();
  return spec.abs().pow(p_.power);
}

at::Tensor LogMelFrontEndImpl::Log(at::Tensor mel) const {
  if (p_.log == v1::LOG_NONE || mel.numel() == 0) return mel;
  if (p_.log_floor > 0) mel = mel.clamp_min(p_.log_floor);
  if (p_.log_offset != 0) mel = mel + p_.log_offset;
  if (p_.log == v1::LOG_NATURAL) return mel.log();
  at::Tensor db = mel.log10().mul_(10.0f);
  if (p_.db_relative_to_max || p_.top_db > 0) {
    at::Tensor max =
        std::get<0>(db.flatten(1).max(/*dim=*/1, true)).unsqueeze(2);
    if (p_.db_relative_to_max) {
      db = db - max;
      if (p_.top_db > 0) db = db.clamp_min(-p_.top_db);
    } else {
      db = at::maximum(db, max - p_.top_db);
    }
  }
  return db;
}

at::Tensor LogMelFrontEndImpl::Finish(at::Tensor x) const {
  if (p_.num_frames > 0 && x.size(1) != p_.num_frames) {
    x = x.size(1) > p_.num_frames
            ? x.narrow(1, 0, p_.num_frames)
            : at::constant_pad_nd(x, {0, 0, 0, p_.num_frames - x.size(1)});
  }
  if (p_.norm_mean != 0) x = x - p_.norm_mean;
  if (p_.norm_std != 1) x = x / p_.norm_std;
  switch (p_.layout) {
    case v1::LAYOUT_BCTF:
      return x.unsqueeze(1).contiguous();
    case v1::LAYOUT_BFT:
      return x.transpose(1, 2).contiguous();
    case v1::LAYOUT_BCFT:
      return x.transpose(1, 2).unsqueeze(1).contiguous();
    default:
      return x.contiguous();
  }
}

at::Tensor LogMelFrontEndImpl::LogMel(const at::Tensor& waveforms,
                                      const Constants& k) const {
  const int64_t frames = p_.ComputedFrames(waveforms.size(1));
  if (frames == 0) {
    return torch::zeros({waveforms.size(0), 0, p_.n_mels},
                        waveforms.options().dtype(torch::kFloat32));
  }
  const at::Tensor x = Condition(waveforms);
  return Log(at::matmul(Spectrum(x, frames, k), k.bank));
}

at::Tensor LogMelFrontEndImpl::Forward(const at::Tensor& waveforms) const {
  TORCH_CHECK(waveforms.dim() == 2,
              "front-end input must be [B, samples], got ", waveforms.sizes());
  const Constants k = On(waveforms.device());
  const int64_t n = waveforms.size(1);
  // Samples before each row's first NaN: a row with a NaN tail is a
  // feature-padded segment (LAST_SEGMENT_PAD_FEATURES).
  const at::Tensor real =
      (~at::isnan(waveforms)).to(torch::kInt64).cumprod(1).sum(1).cpu();
  const auto lengths = real.accessor<int64_t, 1>();
  std::vector<int64_t> full;
  std::vector<int64_t> partial;
  for (int64_t b = 0; b < waveforms.size(0); ++b) {
    (lengths[b] == n ? full : partial).push_back(b);
  }
  if (partial.empty()) return Finish(LogMel(waveforms, k));
  // The features of the real samples alone, zero frames after them up to a
  // full segment's count (Finish then pads or crops to num_frames), before
  // the normalisation.
  const int64_t frames = p_.ComputedFrames(n);
  at::Tensor out = torch::zeros({waveforms.size(0), frames, p_.n_mels},
                                waveforms.options().dtype(torch::kFloat32));
  if (!full.empty()) {
    const at::Tensor index =
        torch::tensor(full, torch::kInt64).to(waveforms.device());
    out.index_copy_(0, index, LogMel(waveforms.index_select(0, index), k));
  }
  for (int64_t b : partial) {
    // Too short for any frame (or for reflect padding): all padding.
    if (p_.ComputedFrames(lengths[b]) == 0 ||
        (p_.center && p_.pad_mode == v1::PAD_REFLECT &&
         lengths[b] <= p_.center_pad)) {
      continue;
    }
    const at::Tensor mel =
        LogMel(waveforms.narrow(0, b, 1).narrow(1, 0, lengths[b]), k);
    out.narrow(0, b, 1).narrow(1, 0, mel.size(1)).copy_(mel);
  }
  return Finish(std::move(out));
}

}  // namespace

absl::StatusOr<std::unique_ptr<FrontEnd>> CreateLogMelFrontEnd(
    const v1::InputConfig& config) {
  ASSIGN_OR_RETURN(LogMelParams p, ResolveLogMelConfig(config));
  const std::vector<float> window = MakeWindow(p.window, p.win_length);
  const std::vector<float> bank =
      MelFilterbank({.n_fft = p.n_fft,
                     .sample_rate = static_cast<double>(p.sample_rate),
                     .n_mels = p.n_mels,
                     .f_min = p.f_min,
                     .f_max = p.f_max,
                     .scale = p.mel_scale,
                     .norm = p.mel_norm,
                     .zero_dc_bin = p.zero_dc_bin});
  Constants cpu{FromVector(window, {p.win_length}),
                FromVector(bank, {p.n_bins(), p.n_mels})};
  return std::make_unique<LogMelFrontEndImpl>(std::move(p), std::move(cpu));
}

}  // namespace audiotag
