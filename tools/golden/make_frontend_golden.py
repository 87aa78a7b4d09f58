#!/usr/bin/python3
"""Writes the golden values that tests/features/ checks audiotag's front-ends
against.

Run with Debian's Python (it has torch 1.13 and torchaudio 0.13):

    /usr/bin/python3 tools/golden/make_frontend_golden.py

Everything is deterministic: the audio is a seeded mix of sines, a chirp and
noise, and the references are torchaudio (melscale_fbanks, MelSpectrogram,
compliance.kaldi), plus two small re-implementations of reference front-ends
that torchaudio does not ship: VGGish's mel_features.py (numpy) and PaSST's
AugmentMelSTFT in eval mode (torch). The audio is saved too, so the C++ tests
feed exactly the samples the references saw.

File format (little-endian): int64 ndim, int64 dims[ndim], float32 data,
row-major. Files go to tests/features/testdata/<name>.f32.
"""

import os
import struct

import numpy as np
import torch
import torchaudio

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                       "tests", "features", "testdata")


def save(name, array):
    array = np.ascontiguousarray(np.asarray(array, dtype="<f4"))
    with open(os.path.join(OUT_DIR, name + ".f32"), "wb") as f:
        f.write(struct.pack("<q", array.ndim))
        f.write(struct.pack("<%dq" % array.ndim, *array.shape))
        f.write(array.tobytes())
    print("%-22s %s" % (name, array.shape))


def make_audio(rate, seconds, seed):
    """A seeded mix of harmonic tones, a chirp and white noise, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    x = np.zeros_like(t)
    for _ in range(4):
        f0 = rng.uniform(80.0, 1000.0)
        for h in range(1, 4):
            x += rng.uniform(0.02, 0.1) / h * np.sin(
                2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi))
    f_end = 0.4 * rate
    x += 0.05 * np.sin(2 * np.pi * (50.0 + (f_end - 50.0) * t / seconds / 2) * t)
    x += 0.03 * rng.standard_normal(t.shape)
    x *= np.linspace(0.5, 1.0, t.size)  # a slow fade-in: not stationary
    return x.astype(np.float32)


def audio_batch(rate, seconds):
    return np.stack([make_audio(rate, seconds, 1), make_audio(rate, seconds, 2)])


def filterbanks():
    fb = torchaudio.functional.melscale_fbanks
    save("fbank_htk", fb(257, 0.0, 8000.0, 64, 16000, None, "htk"))
    save("fbank_htk_norm", fb(257, 125.0, 7500.0, 64, 16000, "slaney", "htk"))
    save("fbank_slaney", fb(513, 50.0, 14000.0, 64, 32000, None, "slaney"))
    save("fbank_slaney_norm",
         fb(513, 50.0, 14000.0, 64, 32000, "slaney", "slaney"))
    save("fbank_kaldi", kaldi_bank(128, 512, 16000.0, 20.0, 0.0).T)


def kaldi_bank(n_mels, n_fft, rate, low, high):
    """Kaldi banks [n_mels, n_fft / 2 + 1], the Nyquist column zero."""
    bank, _ = torchaudio.compliance.kaldi.get_mel_banks(
        n_mels, n_fft, rate, low, high, 100.0, -500.0, 1.0)
    return torch.nn.functional.pad(bank, (0, 1), value=0.0)


def vggish(audio):
    """VGGish's mel_features.log_mel_spectrogram (16 kHz, 25 ms / 10 ms)."""
    win, hop, n_fft, n_mels = 400, 160, 512, 64
    nyquist = 8000.0

    def hz_to_mel(hz):
        return 1127.0 * np.log(1.0 + hz / 700.0)

    bins_mel = hz_to_mel(np.linspace(0.0, nyquist, n_fft // 2 + 1))
    edges = np.linspace(hz_to_mel(125.0), hz_to_mel(7500.0), n_mels + 2)
    weights = np.empty((n_fft // 2 + 1, n_mels))
    for i in range(n_mels):
        lo, mid, hi = edges[i:i + 3]
        weights[:, i] = np.maximum(
            0.0, np.minimum((bins_mel - lo) / (mid - lo),
                            (hi - bins_mel) / (hi - mid)))
    weights[0, :] = 0.0
    window = 0.5 - 0.5 * np.cos(2 * np.pi / win * np.arange(win))
    out = []
    for x in audio.astype(np.float64):
        n_frames = 1 + (len(x) - win) // hop
        frames = np.stack([x[i * hop:i * hop + win] for i in range(n_frames)])
        mag = np.abs(np.fft.rfft(frames * window, n_fft))
        out.append(np.log(mag @ weights + 0.01))
    return np.stack(out)


def panns(audio):
    """torchlibrosa's Spectrogram + LogmelFilterBank defaults for Cnn14."""
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=32000, n_fft=1024, win_length=1024, hop_length=320,
        f_min=50.0, f_max=14000.0, n_mels=64, power=2.0, center=True,
        pad_mode="reflect", norm="slaney", mel_scale="slaney")
    x = mel(torch.from_numpy(audio))
    return (10.0 * torch.log10(torch.clamp(x, min=1e-10))).transpose(1, 2)


def ast(audio):
    """AST's dataloader: mean removed, Kaldi fbank (before pad and norm)."""
    out = []
    for x in torch.from_numpy(audio):
        x = (x - x.mean()).unsqueeze(0)
        out.append(torchaudio.compliance.kaldi.fbank(
            x, htk_compat=True, sample_frequency=16000, use_energy=False,
            window_type="hanning", num_mel_bins=128, dither=0.0,
            frame_shift=10))
    return torch.stack(out)


def passt_like(audio, rate, n_mels, f_max, mean, std):
    """PaSST's AugmentMelSTFT in eval mode (EAsT uses the same code)."""
    x = torch.from_numpy(audio)
    x = torch.nn.functional.conv1d(
        x.unsqueeze(1), torch.tensor([[[-0.97, 1.0]]])).squeeze(1)
    spec = torch.stft(x, 1024, hop_length=320, win_length=800, center=True,
                      normalized=False,
                      window=torch.hann_window(800, periodic=False),
                      return_complex=False)
    power = (spec ** 2).sum(dim=-1)
    bank = kaldi_bank(n_mels, 1024, float(rate), 0.0, f_max)
    mel = torch.matmul(bank, power)
    return (((mel + 0.00001).log() + mean) / std).transpose(1, 2)


def openl3_like(audio):
    """kapre 0.1.4 as OpenL3 mel128 uses it, on audio taken to be 48 kHz:
    Keras 'same' padding (982 zeros each side for n_fft 2048, hop 242), the
    HTK mel bank with area norm on the power STFT, then the square root
    (power_melgram=1.0), dB, minus the per-item max, floor -80.
    """
    x = torch.nn.functional.pad(torch.from_numpy(audio), (982, 982))
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=48000, n_fft=2048, hop_length=242, f_min=0.0,
        f_max=24000.0, n_mels=128, power=2.0, center=False, norm="slaney",
        mel_scale="htk")
    magnitude = torch.sqrt(mel(x))
    db = 10.0 * torch.log10(torch.clamp(magnitude, min=1e-10))
    db = db - db.amax(dim=(1, 2), keepdim=True)
    return torch.clamp(db, min=-80.0).transpose(1, 2)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.manual_seed(0)
    audio_16k = audio_batch(16000, 1.0)
    audio_32k = audio_batch(32000, 1.0)
    save("audio_16k", audio_16k)
    save("audio_32k", audio_32k)
    filterbanks()
    save("vggish", vggish(audio_16k))
    save("panns", panns(audio_32k))
    save("ast_fbank", ast(audio_16k))
    save("passt", passt_like(audio_32k, 32000, 128, 15000.0, 4.5, 5.0))
    save("east_mtat", passt_like(audio_16k, 16000, 96, 8000.0, 3.7, 3.1))
    save("openl3", openl3_like(audio_32k))


if __name__ == "__main__":
    main()
