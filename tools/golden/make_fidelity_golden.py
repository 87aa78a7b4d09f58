#!/usr/bin/python3
"""Writes the reference values for two reference-fidelity options that
tests/features/ checks (issue 13, items 5 and 6).

    /usr/bin/python3 tools/golden/make_fidelity_golden.py

1. OpenL3 mel128's filterbank both ways librosa has built
   `librosa.filters.mel(sr=48000, n_fft=2048, n_mels=128, fmin=0,
   fmax=24000, htk=True, norm=1)`, re-derived in numpy from librosa's
   documented definition (no librosa needed):
     - FFT bin k sits at k * (sr / 2) / (n_fft / 2) Hz;
     - n_mels + 2 edges evenly spaced on the HTK mel scale
       (2595 * log10(1 + f / 700)) from fmin to fmax, mapped back to Hz;
     - band m is the triangle rising from edge m to edge m + 1 and falling to
       edge m + 2, linear in Hz, clipped at 0;
     - librosa < 0.7 read norm=1 as Slaney's area normalisation: band m times
       2 / (edge[m + 2] - edge[m]) (what kapre 0.1.4 gave OpenL3 in 2018);
     - librosa >= 0.8 reads a number as an Lp norm: band m divided by the sum
       of its weights (unit L1 norm; what torchopenl3 gets today).
   Saved as [n_fft / 2 + 1, n_mels] (bin-major), as audiotag lays out banks.
2. AST's loader on a clip shorter than its 1024 frames (YuanGongND/ast,
   dataloader.py `_wav2fbank`): subtract the clip's waveform mean, Kaldi
   fbank with AST's arguments (torchaudio.compliance.kaldi.fbank), then
   zero-pad the *fbank frames* to 1024, then (x + 4.2677393) / 9.1379948.
   Row 0 is the 1 s clip `audio_16k[0]`; row 1 is the first 9000 samples of
   `audio_16k[1]` (0.5625 s, 54 frames), which audiotag sees as a segment
   whose tail is padding (LAST_SEGMENT_PAD_FEATURES). The C++ test feeds the
   segmenter's form of that row: the 9000 samples then NaN. Only the first
   100 of the 1024 frames are saved; the rest are the padding value.

File format as tools/golden/make_frontend_golden.py (int64 ndim, int64 dims,
float32 data, little-endian). Files go to tests/features/testdata/.
"""

import os
import sys

import numpy as np
import torch
import torchaudio

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_frontend_golden import audio_batch, save  # noqa: E402

AST_TAIL_SAMPLES = 9000
SAVED_FRAMES = 100


def htk_mel_triangles(sr, n_fft, n_mels, fmin, fmax):
    """Unnormalised triangles [n_mels, n_fft / 2 + 1] and the band edges (Hz)."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)

    bins_hz = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = to_hz(np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2))
    bank = np.zeros((n_mels, bins_hz.size))
    for m in range(n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rise = (bins_hz - lo) / (mid - lo)
        fall = (hi - bins_hz) / (hi - mid)
        bank[m] = np.clip(np.minimum(rise, fall), 0.0, None)
    return bank, edges


def openl3_banks():
    bank, edges = htk_mel_triangles(48000, 2048, 128, 0.0, 24000.0)
    area = bank * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    sums = np.abs(bank).sum(axis=1, keepdims=True)
    l1 = np.where(sums > 0, bank / np.where(sums > 0, sums, 1.0), bank)
    save("openl3_mel128_area", area.T)
    save("openl3_mel128_l1", l1.T)


def ast_loader(clip):
    x = torch.from_numpy(clip).double()
    x = (x - x.mean()).float().unsqueeze(0)
    fbank = torchaudio.compliance.kaldi.fbank(
        x, htk_compat=True, sample_frequency=16000, use_energy=False,
        window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    fbank = torch.nn.functional.pad(fbank, (0, 0, 0, 1024 - fbank.shape[0]))
    return ((fbank + 4.2677393) / 9.1379948).numpy()


def ast_feature_padding():
    audio = audio_batch(16000, 1.0)
    rows = np.stack([ast_loader(audio[0]), ast_loader(audio[1][:AST_TAIL_SAMPLES])])
    # Frames from SAVED_FRAMES on are all padding in both rows (98 and 54 real
    # frames): each equals 4.2677393 / 9.1379948, which the test checks
    # without a file.
    assert np.all(rows[:, SAVED_FRAMES:] == rows[0, -1, 0])
    save("ast_feature_pad", rows[:, :SAVED_FRAMES])


def main():
    openl3_banks()
    ast_feature_padding()


if __name__ == "__main__":
    main()
