"""Waveform augmentation in numpy: EQ, reverb, noise, gain, lossy codecs.

EQ and reverb are applied in the frequency domain in one FFT pass: the
biquads (RBJ audio-EQ-cookbook shelves, peaks, high/low-pass) are evaluated
as complex frequency responses H(e^jw) on the FFT grid, and the reverb is a
synthetic impulse response (exponentially decaying noise) convolved through
the same FFT. The codec round trip goes through the ffmpeg CLI.
"""
import os
import subprocess
import tempfile

import numpy as np


def _biquad_coeffs(kind, f0, sr, gain_db=0.0, q=0.707):
    """RBJ cookbook biquad coefficients (b, a), a[0] normalised to 1."""
    A = 10.0 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0 / sr
    cw, sw = np.cos(w0), np.sin(w0)
    alpha = sw / (2 * q)
    if kind == "peak":
        b = [1 + alpha * A, -2 * cw, 1 - alpha * A]
        a = [1 + alpha / A, -2 * cw, 1 - alpha / A]
    elif kind == "lowshelf":
        sq = 2 * np.sqrt(A) * alpha
        b = [A * ((A + 1) - (A - 1) * cw + sq), 2 * A * ((A - 1) - (A + 1) * cw),
             A * ((A + 1) - (A - 1) * cw - sq)]
        a = [(A + 1) + (A - 1) * cw + sq, -2 * ((A - 1) + (A + 1) * cw),
             (A + 1) + (A - 1) * cw - sq]
    elif kind == "highshelf":
        sq = 2 * np.sqrt(A) * alpha
        b = [A * ((A + 1) + (A - 1) * cw + sq), -2 * A * ((A - 1) + (A + 1) * cw),
             A * ((A + 1) + (A - 1) * cw - sq)]
        a = [(A + 1) - (A - 1) * cw + sq, 2 * ((A - 1) - (A + 1) * cw),
             (A + 1) - (A - 1) * cw - sq]
    elif kind == "lowpass":
        b = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    elif kind == "highpass":
        b = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2]
        a = [1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ValueError(kind)
    b, a = np.asarray(b, float), np.asarray(a, float)
    return b / a[0], a / a[0]


def biquad_response(b, a, n_fft):
    """Complex frequency response of a biquad on the rfft grid of size n_fft."""
    z = np.exp(-1j * 2 * np.pi * np.arange(n_fft // 2 + 1) / n_fft)
    return (b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z)


def random_eq(rng, sr):
    """A random chain of 1-3 biquads, as a list of (b, a)."""
    chain = []
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["peak", "lowshelf", "highshelf", "lowpass", "highpass"],
                          p=[0.4, 0.2, 0.2, 0.1, 0.1])
        if kind == "peak":
            f0, g = np.exp(rng.uniform(np.log(100), np.log(sr * 0.4))), rng.uniform(-10, 10)
            q = rng.uniform(0.5, 3.0)
        elif kind == "lowshelf":
            f0, g, q = rng.uniform(80, 500), rng.uniform(-10, 10), 0.707
        elif kind == "highshelf":
            f0, g, q = rng.uniform(1500, sr * 0.35), rng.uniform(-12, 8), 0.707
        elif kind == "lowpass":
            f0, g, q = rng.uniform(2500, sr * 0.45), 0.0, 0.707
        else:
            f0, g, q = rng.uniform(40, 300), 0.0, 0.707
        chain.append(_biquad_coeffs(kind, f0, sr, g, q))
    return chain


def synthetic_ir(rng, sr):
    """Exponentially decaying noise with a darker tail and a pre-delay."""
    rt60 = float(rng.uniform(0.2, 2.2))
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    # high frequencies decay faster: mix a smoothed copy in over time
    k = 8
    smooth = np.convolve(noise, np.ones(k) / np.sqrt(k), mode="same")
    mix = np.clip(t / rt60, 0, 1)
    ir = ((1 - mix) * noise + mix * smooth) * np.exp(-6.9 * t / rt60)
    pre = int(rng.uniform(0.0, 0.03) * sr)
    ir = np.concatenate([np.zeros(pre), ir])
    return ir / np.sqrt(np.sum(ir ** 2) + 1e-12)


def colored_noise(rng, n, color):
    """White (0), pink (1) or brown (2) noise, unit RMS."""
    x = rng.standard_normal(n)
    if color:
        X = np.fft.rfft(x)
        f = np.arange(len(X), dtype=float)
        f[0] = 1.0
        X /= f ** (color / 2.0)
        x = np.fft.irfft(X, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def augment(x, rng, sr, p_eq=0.6, p_reverb=0.5, p_noise=0.3):
    """EQ + reverb (one FFT pass) + noise. Returns (y, description)."""
    desc = []
    use_eq = rng.random() < p_eq
    use_rev = rng.random() < p_reverb
    n = len(x)
    if use_eq or use_rev:
        ir = synthetic_ir(rng, sr) if use_rev else None
        n_fft = 1 << int(np.ceil(np.log2(n + (len(ir) if ir is not None else 0) + 16)))
        X = np.fft.rfft(x, n_fft)
        if use_eq:
            for b, a in random_eq(rng, sr):
                X *= biquad_response(b, a, n_fft)
            desc.append("eq")
        if use_rev:
            wet = float(rng.uniform(0.1, 0.6))
            R = np.fft.rfft(ir, n_fft)
            X = X * ((1 - wet) + wet * R)
            desc.append("reverb")
        x = np.fft.irfft(X, n_fft)[:n]
    if rng.random() < p_noise:
        snr = float(rng.uniform(15, 45))
        rms = np.sqrt(np.mean(x ** 2)) + 1e-9
        x = x + colored_noise(rng, n, int(rng.integers(0, 3))) * rms * 10 ** (-snr / 20)
        desc.append("noise")
    return x, desc


def set_level(x, rng, lo_db=-40.0, hi_db=-12.0):
    """Random gain: RMS to a level in [lo_db, hi_db] dBFS, peak kept below 0.99."""
    rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    target = 10 ** (rng.uniform(lo_db, hi_db) / 20)
    y = x * (target / rms)
    peak = np.max(np.abs(y)) + 1e-9
    if peak > 0.99:
        y *= 0.99 / peak
    return y


def codec_roundtrip(x, sr, codec, quality, tmpdir=None):
    """Encode x (float, mono) with ffmpeg (mp3 or ogg vorbis) and decode back.

    The output is aligned to the input by cross-correlation (encoder delay)
    and cut to the input length.
    """
    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        src = os.path.join(d, "in.f32")
        enc = os.path.join(d, "enc." + ("mp3" if codec == "mp3" else "ogg"))
        dst = os.path.join(d, "out.f32")
        x.astype("<f4").tofile(src)
        codec_args = (["-c:a", "libmp3lame", "-b:a", f"{int(quality)}k"] if codec == "mp3"
                      else ["-c:a", "libvorbis", "-q:a", str(quality)])
        base = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        subprocess.run(base + ["-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", src]
                       + codec_args + [enc], check=True)
        subprocess.run(base + ["-i", enc, "-f", "f32le", "-ar", str(sr), "-ac", "1", dst],
                       check=True)
        y = np.fromfile(dst, dtype="<f4").astype(np.float64)
    # align: find the lag in [-4000, 4000] samples on a 5 s excerpt
    m = min(len(x), len(y), 5 * sr)
    seg_x, seg_y = x[:m], y[:m]
    n_fft = 1 << int(np.ceil(np.log2(2 * m)))
    c = np.fft.irfft(np.fft.rfft(seg_y, n_fft) * np.conj(np.fft.rfft(seg_x, n_fft)), n_fft)
    lags = np.concatenate([np.arange(0, 4001), np.arange(-4000, 0)])
    lag = int(lags[np.argmax(np.concatenate([c[:4001], c[-4000:]]))])
    if lag > 0:
        y = y[lag:]
    elif lag < 0:
        y = np.concatenate([np.zeros(-lag), y])
    if len(y) < len(x):
        y = np.concatenate([y, np.zeros(len(x) - len(y))])
    return y[:len(x)]
