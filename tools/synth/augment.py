"""Waveform augmentation in numpy: speed change, EQ, reverb, microphone /
speaker / telephone colouration, dynamic-range compression, noise, gain,
lossy codecs.

All functions take mono float64 signals at sample rate sr (Hz) and a
numpy.random.Generator, so results are deterministic given the seed.

The linear parts (EQ, reverb, colourations) are applied in the frequency
domain in one FFT pass: the biquads (RBJ audio-EQ-cookbook shelves, peaks,
high/low-pass) are evaluated as complex frequency responses H(e^jw) on the
FFT grid, the colourations are smooth zero-phase magnitude responses, and the
reverb is a synthetic impulse response (exponentially decaying noise)
convolved through the same FFT. Compression (a feed-forward compressor) and
noise follow; the codec round trip goes through the ffmpeg CLI (mp3, Ogg
Vorbis, AAC, Opus). The speed change (pitch and tempo together, like a tape
or turntable running fast or slow) is applied where the clip is cut out of
its render, since it needs a little more (or less) source audio than the
clip; the caller rescales the label times by the factor it returns.
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


# --- speed change (pitch + tempo) -------------------------------------------

def speed_change(src, factor, n_out, pad=2048):
    """Play src `factor` times faster (factor > 1: higher and shorter).

    src: float [m] source samples, m >= about n_out * factor (the caller cuts
    the clip plus a margin out of the render); n_out: output length (samples).
    Band-limited resampling through the FFT: the first m = round(n_out *
    factor) samples of src, zero-padded by `pad` samples (so the circular FFT
    does not wrap the end onto the start), are resampled from M = m + pad to
    N = round(M / factor) samples, and the first n_out kept.
    Returns (y [n_out], exact factor M / N): output sample k corresponds to
    source time k * M / N samples, so labels at output time t are those of
    source time t * factor_exact.
    """
    m = min(int(round(n_out * factor)), len(src))
    M = m + pad
    N = int(round(M / factor))
    X = np.fft.rfft(src[:m], M)
    K = N // 2 + 1
    if K <= len(X):
        Y = X[:K].copy()
        if N % 2 == 0:
            Y[-1] = Y[-1].real  # Nyquist bin of the shorter signal
    else:
        Y = np.zeros(K, dtype=complex)
        Y[:len(X)] = X
        if M % 2 == 0:
            Y[len(X) - 1] *= 0.5  # split the old Nyquist bin
    y = np.fft.irfft(Y, N) * (N / M)
    if len(y) < n_out:
        y = np.concatenate([y, np.zeros(n_out - len(y))])
    return y[:n_out], M / N


def random_speed(rng, max_semitones=1.0):
    """Speed factor uniform in +-max_semitones (1 semitone = +-5.9 %)."""
    return float(2.0 ** (rng.uniform(-max_semitones, max_semitones) / 12.0))


# --- colourations: smooth zero-phase magnitude responses -------------------

def _log_bumps(f, rng, n, gain_db, width_oct, lo=150.0, hi=7000.0):
    """Sum of n Gaussian bumps on a log-frequency axis, in dB, on grid f (Hz)."""
    out = np.zeros_like(f)
    lf = np.log2(np.maximum(f, 1.0))
    for _ in range(n):
        fc = np.log2(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        g = rng.uniform(*gain_db) * (1 if rng.random() < 0.5 else -1)
        w = rng.uniform(*width_oct)
        out += g * np.exp(-0.5 * ((lf - fc) / w) ** 2)
    return out


def _butter_mag_db(f, fc, order, kind):
    """Magnitude (dB) of an order-`order` Butterworth high- or low-pass."""
    f = np.maximum(f, 1e-3)
    ratio = (fc / f) if kind == "highpass" else (f / fc)
    return -10.0 * np.log10(1.0 + ratio ** (2 * order))


def colouration(rng, f, kind):
    """Random smooth magnitude response (dB) on frequencies f (Hz) for
    kind "mic" (2-6 resonances and dips of 2-7 dB, 0.1-0.7 octave wide, a
    tilt of +-2 dB/octave around 1 kHz, clamped to +-12 dB), "speaker" (small loudspeaker:
    order 2-4 high-pass at 150-500 Hz with a 2-8 dB resonance at its corner,
    order 2-4 low-pass at 3.5-7.5 kHz, 2-5 ripples of 2-5 dB) or "telephone"
    (order 4 band-pass 250-400 Hz to 3.0-3.6 kHz, the ITU-T G.712 voice band
    300-3400 Hz, with 1-3 ripples). Returns (dB [len(f)], description)."""
    if kind == "mic":
        db = _log_bumps(f, rng, int(rng.integers(2, 7)), (2, 7), (0.1, 0.7))
        tilt = rng.uniform(-2, 2)
        db += tilt * np.clip(np.log2(np.maximum(f, 20.0) / 1000.0), -4, 3)
        return np.clip(db, -12, 12), f"mic:{tilt:+.1f}dB/oct"
    if kind == "speaker":
        fh, oh = rng.uniform(150, 500), int(rng.integers(2, 5))
        fl, ol = rng.uniform(3500, 7500), int(rng.integers(2, 5))
        db = _butter_mag_db(f, fh, oh, "highpass") + _butter_mag_db(f, fl, ol, "lowpass")
        lf = np.log2(np.maximum(f, 1.0))
        db += rng.uniform(2, 8) * np.exp(-0.5 * ((lf - np.log2(fh * 1.2)) / 0.3) ** 2)
        db += _log_bumps(f, rng, int(rng.integers(2, 6)), (2, 5), (0.1, 0.4), fh, fl)
        return np.maximum(db, -60), f"speaker:{fh:.0f}-{fl:.0f}Hz"
    if kind == "telephone":
        fh, fl = rng.uniform(250, 400), rng.uniform(3000, 3600)
        db = _butter_mag_db(f, fh, 4, "highpass") + _butter_mag_db(f, fl, 4, "lowpass")
        db += _log_bumps(f, rng, int(rng.integers(1, 4)), (1, 4), (0.2, 0.5), fh, fl)
        return np.maximum(db, -60), f"telephone:{fh:.0f}-{fl:.0f}Hz"
    raise ValueError(kind)


# --- dynamic-range compression -----------------------------------------------

def compress(x, sr, threshold_db, ratio, attack_ms, release_ms, knee_db=6.0, block=16,
             lookahead=3.0):
    """Feed-forward compressor (Giannoulis, Massberg and Reiss, "Digital
    dynamic range compressor design: a tutorial and analysis", JAES 2012:
    peak level detector in dB, soft-knee static curve, gain smoothed with
    separate attack and release time constants).

    x: float [n]; threshold_db: dBFS; ratio >= 1; attack/release: ms. The
    level is the block peak (block = 16 samples = 1 ms at 16 kHz); the gain
    is smoothed per block and interpolated to samples. No make-up gain (the
    caller sets the level). Look-ahead: the gain is applied lookahead *
    attack_ms earlier than the level it follows (as a delayed side chain
    would), so transients are caught and the crest factor goes down (0: a
    plain compressor, which lets onsets through and can raise it).
    Returns y [n]."""
    n = len(x)
    nb = -(-n // block)
    xp = np.concatenate([np.abs(x), np.zeros(nb * block - n)]).reshape(nb, block)
    level = 20.0 * np.log10(xp.max(axis=1) + 1e-9)
    over = level - threshold_db
    slope = 1.0 / ratio - 1.0
    gr = np.where(over <= -knee_db / 2, 0.0,
                  np.where(over >= knee_db / 2, slope * over,
                           slope * (over + knee_db / 2) ** 2 / (2 * knee_db)))
    a_att = np.exp(-block / (sr * attack_ms * 1e-3))
    a_rel = np.exp(-block / (sr * release_ms * 1e-3))
    g = np.empty(nb)
    state = 0.0
    for k, target in enumerate(gr.tolist()):
        a = a_att if target < state else a_rel
        state = a * state + (1.0 - a) * target
        g[k] = state
    centres = (np.arange(nb) + 0.5) * block
    ahead = lookahead * attack_ms * 1e-3 * sr
    gain_db = np.interp(np.arange(n) + ahead, centres, g)
    return x * 10.0 ** (gain_db / 20.0)


def random_compress(x, sr, rng):
    """compress() with random settings: threshold 3-20 dB below the 95th
    percentile of the 1-ms peak level, ratio 2-8, attack 0.5-10 ms (with
    look-ahead), release 40-400 ms. Returns (y, description)."""
    n = len(x)
    nb = max(n // 16, 1)
    peaks = np.abs(x[:nb * 16]).reshape(nb, -1).max(axis=1)
    ref = 20.0 * np.log10(np.percentile(peaks, 95) + 1e-9)
    thr = ref - float(rng.uniform(3, 20))
    ratio = float(rng.uniform(2, 8))
    att, rel = float(rng.uniform(0.5, 10)), float(rng.uniform(40, 400))
    return compress(x, sr, thr, ratio, att, rel), f"compress:{ref - thr:.0f}dB/{ratio:.1f}"


# --- noise ----------------------------------------------------------------------

NOISE_TYPES = ["white", "pink", "brown", "blue", "hum", "crackle", "modulated"]


def make_noise(rng, n, sr, kind):
    """Unit-RMS noise of n samples: white, pink (1/f), brown (1/f^2), blue
    (f: hiss), hum (50 or 60 Hz mains with 1-12 harmonics falling as
    1/k^0.5-2, plus a little white noise), crackle (vinyl-like clicks, 5-50
    per second, on faint white noise) or modulated (pink noise, amplitude
    modulated at 0.3-4 Hz: passing traffic, crowd)."""
    if kind in ("white", "pink", "brown"):
        return colored_noise(rng, n, ["white", "pink", "brown"].index(kind))
    if kind == "blue":
        X = np.fft.rfft(rng.standard_normal(n))
        X *= np.sqrt(np.arange(len(X), dtype=float))
        x = np.fft.irfft(X, n)
    elif kind == "hum":
        t = np.arange(n) / sr
        f0 = 50.0 if rng.random() < 0.5 else 60.0
        p = rng.uniform(0.5, 2.0)
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k ** p
                for k in range(1, int(rng.integers(1, 13)) + 1))
        x = x + 0.05 * rng.standard_normal(n)
    elif kind == "crackle":
        x = 0.02 * rng.standard_normal(n)
        n_clicks = rng.poisson(rng.uniform(5, 50) * n / sr)
        pos = rng.integers(0, n, n_clicks)
        amp = rng.exponential(1.0, n_clicks) * rng.choice([-1.0, 1.0], n_clicks)
        clicks = np.zeros(n)
        np.add.at(clicks, pos, amp)
        k = np.exp(-np.arange(int(0.002 * sr)) / (0.0004 * sr))
        x = x + np.convolve(clicks, k)[:n]
    elif kind == "modulated":
        t = np.arange(n) / sr
        env = 1.0 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.3, 4.0) * t + rng.uniform(0, 2 * np.pi))
        x = colored_noise(rng, n, 1) * env
    else:
        raise ValueError(kind)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def augment(x, rng, sr, p_eq=0.6, p_reverb=0.5, p_noise=0.35, p_colour=0.3, p_compress=0.3):
    """Reverb + EQ + colouration (one FFT pass), compression, noise.

    x: float [n]. Probabilities per clip: EQ p_eq, reverb p_reverb,
    colouration p_colour (of which mic 0.5, speaker 0.35, telephone 0.15),
    compression p_compress, noise p_noise (type uniform over NOISE_TYPES;
    SNR 10-45 dB, hum and crackle 20-45 dB). Returns (y [n], description: a
    list of strings, e.g. ["reverb", "mic:+1.2dB/oct", "noise:pink:23dB"])."""
    desc = []
    use_eq = rng.random() < p_eq
    use_rev = rng.random() < p_reverb
    use_col = rng.random() < p_colour
    n = len(x)
    if use_eq or use_rev or use_col:
        ir = synthetic_ir(rng, sr) if use_rev else None
        n_fft = 1 << int(np.ceil(np.log2(n + (len(ir) if ir is not None else 0) + 16)))
        X = np.fft.rfft(x, n_fft)
        if use_rev:
            wet = float(rng.uniform(0.1, 0.6))
            R = np.fft.rfft(ir, n_fft)
            X = X * ((1 - wet) + wet * R)
            desc.append("reverb")
        if use_eq:
            for b, a in random_eq(rng, sr):
                X *= biquad_response(b, a, n_fft)
            desc.append("eq")
        if use_col:
            kind = str(rng.choice(["mic", "speaker", "telephone"], p=[0.5, 0.35, 0.15]))
            db, d = colouration(rng, np.fft.rfftfreq(n_fft, 1.0 / sr), kind)
            X *= 10.0 ** (db / 20.0)
            desc.append(d)
        x = np.fft.irfft(X, n_fft)[:n]
    if rng.random() < p_compress:
        x, d = random_compress(x, sr, rng)
        desc.append(d)
    if rng.random() < p_noise:
        kind = NOISE_TYPES[int(rng.integers(len(NOISE_TYPES)))]
        snr = float(rng.uniform(20, 45) if kind in ("hum", "crackle") else rng.uniform(10, 45))
        rms = np.sqrt(np.mean(x ** 2)) + 1e-9
        x = x + make_noise(rng, n, sr, kind) * rms * 10 ** (-snr / 20)
        desc.append(f"noise:{kind}:{snr:.0f}dB")
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


CODECS = {  # name: (container extension, ffmpeg args given a quality)
    "mp3": ("mp3", lambda q: ["-c:a", "libmp3lame", "-b:a", f"{int(q)}k"]),
    "ogg": ("ogg", lambda q: ["-c:a", "libvorbis", "-q:a", str(q)]),
    "aac": ("aac", lambda q: ["-c:a", "aac", "-b:a", f"{int(q)}k", "-f", "adts"]),
    "opus": ("opus", lambda q: ["-c:a", "libopus", "-b:a", f"{int(q)}k"]),
}
# (weight, qualities): mp3 kbit/s, Vorbis -q, AAC kbit/s, Opus kbit/s
CODEC_CHOICES = {"mp3": (0.3, [32, 48, 64, 96, 128]), "ogg": (0.2, [0, 1, 2, 3, 4]),
                 "aac": (0.25, [24, 32, 48, 64, 96]), "opus": (0.25, [12, 16, 24, 32, 48])}


def random_codec(rng):
    """(codec, quality) drawn from CODEC_CHOICES."""
    names = list(CODEC_CHOICES)
    w = np.array([CODEC_CHOICES[c][0] for c in names])
    c = names[int(rng.choice(len(names), p=w / w.sum()))]
    qs = CODEC_CHOICES[c][1]
    return c, qs[int(rng.integers(len(qs)))]


def codec_roundtrip(x, sr, codec, quality, tmpdir=None):
    """Encode x (float, mono) with ffmpeg (mp3, ogg = Vorbis, aac or opus)
    and decode back.

    The output is aligned to the input by cross-correlation (encoder delay)
    and cut to the input length.
    """
    ext, args = CODECS[codec]
    with tempfile.TemporaryDirectory(dir=tmpdir) as d:
        src = os.path.join(d, "in.f32")
        enc = os.path.join(d, "enc." + ext)
        dst = os.path.join(d, "out.f32")
        x.astype("<f4").tofile(src)
        codec_args = args(quality)
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
