"""The student's log-mel front-end, computed exactly as audiotag's C++
front-end computes the LogMelFrontEnd in models/openmic_student/config.pbtxt.

Config semantics (proto/audiotag/v1/model_config.proto, LogMelFrontEnd):
  sample_rate 16000, n_fft 512, win_length 512, hop_length 160,
  window WINDOW_HANN_PERIODIC (torch.hann_window(512, periodic=True)),
  center false (no padding: frame i covers samples [i*160, i*160 + 512)),
  no pre-emphasis,
  no DC removal, n_mels 64, f_min 0, f_max 8000 (= fs/2), MEL_HTK
  (torchaudio melscale_fbanks mel_scale="htk", norm None), power 2,
  LOG_NATURAL: ln(x + 1e-5) (log_floor 0), then (x - NORM_MEAN) / NORM_STD.

Framing: win_length == n_fft, so there is no ambiguity about where a shorter
window sits inside the FFT frame. A 1 s segment of 16000 samples gives
1 + (16000 - 512) // 160 = 97 frames; segment hops of 8000 samples are exactly
50 frames, so features of a whole clip cropped at frame 50*k equal the
features of the k-th segment computed on its own.
"""
import torch
import torchaudio

SAMPLE_RATE = 16000
N_FFT = 512
WIN_LENGTH = 512
HOP_LENGTH = 160
N_MELS = 64
F_MIN = 0.0
F_MAX = 8000.0
LOG_OFFSET = 1e-5
NORM_MEAN = -3.0
NORM_STD = 4.5
SEGMENT_SAMPLES = 16000
SEGMENT_HOP = 8000


def n_frames(n_samples):
    if n_samples < N_FFT:
        return 0
    return 1 + (n_samples - N_FFT) // HOP_LENGTH


SEGMENT_FRAMES = n_frames(SEGMENT_SAMPLES)  # 97
SEGMENT_HOP_FRAMES = SEGMENT_HOP // HOP_LENGTH  # 50


class LogMel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH, periodic=True,
                                                         dtype=torch.float64))
        fb = torchaudio.functional.melscale_fbanks(
            N_FFT // 2 + 1, F_MIN, F_MAX, N_MELS, SAMPLE_RATE, norm=None, mel_scale="htk")
        self.register_buffer("fb", fb.to(torch.float64))  # [freqs, mels]

    def forward(self, wav):
        """wav [B, samples] float -> normalised log-mel [B, frames, mels] float32.

        Computed in float64 for a reference value; float32 agrees to ~1e-5.
        """
        x = wav.to(torch.float64)
        spec = torch.stft(x, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                          window=self.window, center=False, return_complex=True)
        power = spec.real ** 2 + spec.imag ** 2  # [B, freqs, frames]
        mel = torch.matmul(power.transpose(1, 2), self.fb)  # [B, frames, mels]
        logmel = torch.log(mel + LOG_OFFSET)
        return ((logmel - NORM_MEAN) / NORM_STD).to(torch.float32)


_LOGMEL = None


def logmel(wav):
    """numpy or torch waveform [samples] or [B, samples] -> torch [.., frames, mels]."""
    global _LOGMEL
    if _LOGMEL is None:
        _LOGMEL = LogMel()
    t = torch.as_tensor(wav)
    squeeze = t.dim() == 1
    if squeeze:
        t = t[None]
    with torch.no_grad():
        out = _LOGMEL(t)
    return out[0] if squeeze else out


def frame_centers(n):
    """Centre time (s) of each of n frames."""
    return (torch.arange(n, dtype=torch.float64) * HOP_LENGTH + N_FFT / 2).numpy() / SAMPLE_RATE
