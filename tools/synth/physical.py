"""Our own synthesisers: timbre that no General MIDI sample bank gives.

numpy only, vectorised: recursions run one string period per numpy call,
filters are evaluated as frequency responses on an FFT grid (as in
augment.py), partial banks are (partials x samples) arrays. Everything is
deterministic given the numpy Generator passed in.

Interface. Every synthesiser is a function

    note(pitch, velocity, duration, sr, rng, voice=None) -> float64 [n]

pitch: MIDI note number (float: fractional = detune), velocity 1-127,
duration: seconds from note-on to note-off, sr: sample rate (Hz), rng: a
numpy Generator for per-instance variation. The returned audio starts at the
note-on and includes the release/damping tail after note-off (so n >
duration * sr). ``voice`` is the per-part timbre (a dict drawn once per part
by ``draw_voice(name, rng, program)``: string brightness, body resonances,
drawbar registration, ...); when omitted it is drawn from ``rng``.
Body and formant filters that are the same for every note of a part are
applied once per part (``render_part``), not per note; ``note_with_body``
applies them to a single note.

``render_part(part, sr, duration, rng)`` renders a music.Part (its notes'
on/off/pitch/velocity, the part's volume and detune) with the synthesiser of
its class (``choose_synth``) and returns (audio [duration * sr], synth name).

Synthesisers (name: method -> OpenMIC classes served)
-----------------------------------------------------
Plucked strings, Karplus-Strong (Karplus & Strong 1983, "Digital synthesis of
plucked-string and drum timbres", CMJ 7(2)) with the extensions of Jaffe &
Smith 1983 ("Extensions of the Karplus-Strong plucked-string algorithm", CMJ
7(2)): fractional-delay tuning (here a 3rd-order Lagrange FIR interpolator
inside the loop, Laakso et al. 1996 "Splitting the unit delay"), pick-position
comb on the excitation (1 - z^-(beta P)), dynamic-level (velocity) low-pass on
the excitation, loss filter with decay stretch (symmetric 3-tap FIR
b + (1-b) cos w, linear phase, delay 1 sample; b -> 1 stretches the decay of
high partials), loop gain set from a T60 at the fundamental; body resonance
as a few random resonators (complex 2nd-order responses) around the
instrument's body-mode regions (guitar: Helmholtz air mode ~90-110 Hz, top
plate ~180-230 Hz and ~380-450 Hz, Fletcher & Rossing 1998, "The Physics of
Musical Instruments", ch. 9; Christensen & Vistisen 1980). Damping at
note-off: an exponential fade (a felt/finger damper, 40-120 ms).
  ks_guitar_steel, ks_guitar_nylon -> guitar (GM program 24 nylon, others
      steel; 29/30 add tanh overdrive)
  ks_banjo -> banjo: bright excitation, pick near the bridge, fast decay
      (T60 0.6-1.4 s), drum-head body (membrane modes ~250-600 Hz, sharper
      and higher than a wooden body, plus a 1-3 kHz presence region)
  ks_bass_electric, ks_bass_acoustic -> bass (GM 32 acoustic: short decay and
      a low air/body mode 60-110 Hz; 33-39 electric: long decay, no body;
      38/39 synth bass get a subtractive saw instead: see synth_subtractive)
  ks_mandolin -> mandolin: paired courses (two strings per note detuned by
      2-10 cents, beating), bright steel strings, short decay (T60 0.6-1.3 s),
      small body (air ~ 250-300 Hz). Tremolo picking is in the notes:
      music.py splits long notes of the "tremolo" role into repeated plucks.
  ks_ukulele -> ukulele: nylon, soft (low excitation cut-off), short sustain
      (T60 0.5-1.1 s), small body (air ~ 180-260 Hz); music.py restricts the
      pitch range to MIDI 60-81 and voices chords re-entrantly (GCEA: G4 C4
      E4 A4).
  ks_harpsichord -> piano (GM 6 harpsichord, 7 clavinet): very bright pluck
      near the end of the string.
  ks_pizzicato -> violin, cello (GM 45 pizzicato strings): soft finger pluck,
      T60 0.3-0.8 s, the bowed-string body resonators.
  Guitar variants: GM 26 jazz darker, 28 palm-muted (T60 0.15-0.4 s).
Bowed strings:
  bowed_violin, bowed_viola, bowed_cello, bowed_ensemble -> violin, cello.
      Helmholtz motion gives a sawtooth-like bridge force: a band-limited
      (polyBLEP, Valimaki & Huovilainen 2007) sawtooth with vibrato 5-7 Hz,
      depth 5-25 cents, onset after 0.1-0.35 s, slow attack 60-250 ms, bow
      noise (high-passed noise, stronger at the attack), and a body of random
      resonators around the published mode regions (violin: A0 ~275 Hz,
      CBR ~400 Hz, B1- ~470 Hz, B1+ ~540 Hz, Bissinger 2008 "Structural
      acoustics of good and bad violins", JASA 124; the "bridge hill"
      2-3 kHz, Jansson 1997; cello modes scaled by ~0.4, viola by ~0.8).
      The ensemble voice (GM 48/49) is 3 detuned players; GM 44 (tremolo
      strings) adds rapid bow strokes (|sin| amplitude, 6-8 Hz).
Winds and brass (additive, per-harmonic amplitudes, formant-like spectral
envelope evaluated at the harmonic frequencies):
  wind_flute -> flute: near-sine (harmonics -10..-25 dB), breath noise
      band-passed around the pitch, chiff at the attack (GM 74 recorder purer,
      75/77 pan flute / shakuhachi breathier).
  wind_clarinet -> clarinet: odd harmonics dominant below ~2 kHz (closed
      cylindrical bore), even harmonics -20..-35 dB there.
  wind_sax -> saxophone: all harmonics (conical bore), formant 400-1200 Hz,
      brightness with velocity.
  brass_trumpet, brass_trombone -> trumpet, trombone: spectral envelope grows
      with amplitude (harmonic k ~ env^(1 + gamma (k - 1)), the brass
      "brightness rises with level" of Risset 1966 / Beauchamp 1982), lip
      attack (pitch starts 30-80 cents flat and settles within ~40 ms, small
      amplitude overshoot), formant (trumpet ~1-1.5 kHz, trombone ~500 Hz);
      GM 59 muted trumpet: nasal 1.5-2.5 kHz peak, low harmonics cut.
Keyboards, reeds, synths, mallets, voice:
  organ_drawbar -> organ: additive drawbar registrations (16', 5 1/3', 8',
      4', 2 2/3', 2', 1 3/5', 1 1/3', 1' = harmonic ratios 0.5, 1.5, 1, 2, 3,
      4, 5, 6, 8; 3 dB per drawbar step), key click, optional rotary-like
      tremolo (AM + FM at 0.7-1 Hz or 5.5-7 Hz), percussion, overdrive.
  accordion_reeds -> accordion: 2-3 free reeds (band-limited pulse trains)
      detuned 3-25 cents (musette beating), optional octave reed, reed-chamber
      formant, bellows envelope.
  synth_subtractive -> synthesizer (GM 80-95) and synth bass (38/39):
      saw/square/pulse polyBLEP oscillators (1-3 detuned), resonant low-pass
      (2-pole magnitude response) whose cutoff follows an envelope, applied
      frame by frame (STFT, 32 ms frames) so it varies in time.
  modal_mallet -> mallet_percussion: sum of exponentially decaying modes with
      bar partial ratios: marimba 1:4:10 (tuned), xylophone 1:3:6 (tuned),
      vibraphone 1:4:10 with motor tremolo, glockenspiel / celesta free-free
      uniform bar 1:2.756:5.404:8.933, music box clamped-free tine
      1:6.267:17.55 (Fletcher & Rossing 1998, ch. 2 and 19); mallet noise.
  piano_additive -> piano (GM 0-5): partials f_k = k f0 sqrt(1 + B k^2)
      (stiff string, Fletcher 1964) with B rising with pitch, 2-3 unison
      strings detuned by ~1 cent (double decay and beating, Weinreich 1977),
      hammer-position comb, higher partials decaying faster, hammer noise;
      e-piano variant (4, 5): tine fundamental + fast-decaying bell partial.
  voice_formant -> voice: glottal source (band-limited saw, -12 dB/oct),
      vowel formants F1-F3 (Peterson & Barney 1952 averages, male / female
      sets, scaled randomly), vibrato, breath noise; GM 52 (choir) 3-4
      detuned singers.
Drums and cymbals (per note number of music.py's drum channel):
  drum_kit -> drums (a drums part's cymbal hits are rendered by the same kit's
      cymbal model below, and the part is recorded as drum_kit): kick 35/36 (sine with exponential pitch sweep + click),
      snare 38/40 (two membrane modes ~180-330 Hz + band-passed noise for the
      snares), side stick 37, clap 39 (noise bursts), hi-hats 42/44/46
      (six detuned square waves as in the Roland TR-808 hat, 205-800 Hz
      scaled, plus noise, high-passed; closed/pedal/open decays), toms
      41-50 and bongos/congas 60-64 (pitched membrane, modes 1 : 1.59 : 2.14
      of an ideal membrane, pitch drop), tambourine 54, cowbell 56 (808
      two-square 540/800 Hz), cabasa/maracas 69/70, claves 75. Kits 24/25
      (electronic, TR-808) give the analogue variants.
  drum_cymbal -> cymbals: notes 49/57 crash, 51/59 ride (+ bell partials), 52
      china, 55 splash: shaped noise whose spectrum has many inharmonic
      metallic peaks, a bright fast-decaying layer and a darker long one.
"""
import numpy as np

TWO_PI = 2.0 * np.pi

# OpenMIC classes that have a synthesiser here (the synth source samples only these)
SUPPORTED = ["accordion", "banjo", "bass", "cello", "clarinet", "cymbals", "drums",
             "flute", "guitar", "mallet_percussion", "mandolin", "organ", "piano",
             "saxophone", "synthesizer", "trombone", "trumpet", "ukulele", "violin",
             "voice"]


def midi_hz(pitch):
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=float) - 69.0) / 12.0)


# ---------------------------------------------------------------------------
# helpers


def _fft_len(n):
    return 1 << int(np.ceil(np.log2(max(n, 2))))


def _freqs(n_fft, sr):
    return np.arange(n_fft // 2 + 1) * (sr / n_fft)


def _apply_response(x, sr, resp_fn, pad=0):
    """Filter x by the (complex or real) response resp_fn(f [Hz]) on an FFT grid.

    pad: extra samples of tail kept (filter ringing); returns len(x) + pad."""
    n = len(x) + pad
    n_fft = _fft_len(n + 256)
    X = np.fft.rfft(x, n_fft)
    X *= resp_fn(_freqs(n_fft, sr))
    return np.fft.irfft(X, n_fft)[:n]


def _resonator(f, f0, q):
    """Analogue 2nd-order band-pass response, peak 1 at f0: 1 / (1 + jQ(f/f0 - f0/f))."""
    f = np.maximum(f, 1e-3)
    return 1.0 / (1.0 + 1j * q * (f / f0 - f0 / f))


def _body_response(modes, direct=1.0):
    """direct + sum of gain * resonator(f0, Q) for modes [(f0, q, gain)]."""
    def resp(f):
        h = np.full(len(f), direct, dtype=complex)
        for f0, q, g in modes:
            h += g * _resonator(f, f0, q)
        return h
    return resp


def _band_mag(f, lo=None, hi=None, order=2):
    """Butterworth-like magnitude: high-pass at lo, low-pass at hi (Hz)."""
    m = np.ones(len(f))
    if lo:
        m /= np.sqrt(1.0 + (lo / np.maximum(f, 1e-3)) ** (2 * order))
    if hi:
        m /= np.sqrt(1.0 + (f / hi) ** (2 * order))
    return m


def _shaped_noise(n, sr, rng, mag_fn):
    """Gaussian noise with magnitude spectrum mag_fn(f) (one inverse FFT)."""
    n_fft = _fft_len(n)
    k = n_fft // 2 + 1
    X = (rng.standard_normal(k) + 1j * rng.standard_normal(k)) * mag_fn(_freqs(n_fft, sr))
    X[0] = 0.0
    y = np.fft.irfft(X, n_fft)[:n]
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


def _release(y, sr, start_s, tau_s):
    """Exponential fade (time constant tau_s) from start_s on."""
    a = int(start_s * sr)
    if a < len(y):
        y[a:] *= np.exp(-np.arange(len(y) - a) / (tau_s * sr))
    return y


def _asr(n, sr, attack, duration, release, shape=1.0):
    """Attack (power curve) to 1, hold to note-off, exponential release.

    The attack is at most 30 % of the note (short notes speak faster)."""
    attack = min(attack, max(0.3 * duration, 0.005))
    t = np.arange(n) / sr
    env = np.clip(t / max(attack, 1e-4), 0.0, 1.0) ** shape
    off = t > duration
    env[off] *= np.exp(-(t[off] - duration) / max(release / 4.6, 1e-4))
    return env


def _polyblep(t, dt):
    """PolyBLEP residual for phase t in [0,1) and increment dt (cycles/sample)."""
    r = np.zeros_like(t)
    a = t < dt
    x = t[a] / dt[a]
    r[a] = x + x - x * x - 1.0
    b = t > 1.0 - dt
    x = (t[b] - 1.0) / dt[b]
    r[b] = x * x + x + x + 1.0
    return r


def _phase(freq, sr, phase0=0.0):
    """Running phase in cycles (float64) of an instantaneous frequency track."""
    return phase0 + np.cumsum(freq) / sr


def _saw(freq, sr, phase0=0.0):
    """Band-limited (polyBLEP) sawtooth, amplitude +-1, for a frequency track [n]."""
    ph = _phase(freq, sr, phase0)
    t = ph - np.floor(ph)
    dt = np.minimum(np.asarray(freq, float) / sr, 0.49) * np.ones_like(t)
    return 2.0 * t - 1.0 - _polyblep(t, dt)


def _pulse(freq, sr, width, phase0=0.0):
    """Band-limited pulse (difference of two sawtooths), width in (0, 1); 0.5 = square."""
    return 0.5 * (_saw(freq, sr, phase0) - _saw(freq, sr, phase0 + width))


def _vibrato(n, sr, rate, depth_cents, onset, rng):
    """Frequency multiplier track: sinusoidal vibrato with a slow onset and jitter."""
    t = np.arange(n) / sr
    ramp = np.clip((t - onset) / 0.25, 0.0, 1.0)
    drift = 1.0 + 0.02 * np.sin(TWO_PI * float(rng.uniform(0.2, 0.6)) * t + rng.uniform(0, 6.3))
    cents = depth_cents * ramp * np.sin(TWO_PI * rate * drift * t + rng.uniform(0, 6.3))
    return 2.0 ** (cents / 1200.0)


def _additive(freq, amps, sr, ratios=None, phases=None):
    """Sum of partials: sum_k amps[k] * sin(2 pi ratios[k] * phase(t) + phases[k]).

    freq: [n] fundamental track (Hz); amps: [K, n] or [K, 1] amplitudes;
    ratios: [K] partial/fundamental ratios (default 1..K). Partials at or above
    0.48 sr are dropped."""
    K = amps.shape[0]
    ratios = np.arange(1, K + 1, dtype=float) if ratios is None else np.asarray(ratios, float)
    fmax = float(np.max(freq))
    keep = ratios * fmax < 0.48 * sr
    ph = _phase(freq, sr)
    ph = (ph - np.floor(ph)).astype(np.float32)
    # float32 (vectorised sin): the phase is reduced to [0, 1) cycles first, so the
    # error is ~1e-5 rad even for the 40th partial
    arg = (TWO_PI * ratios[keep]).astype(np.float32)[:, None] * ph[None, :]
    if phases is not None:
        arg += np.asarray(phases, np.float32)[keep, None]
    a = np.asarray(amps[keep], np.float32)
    if a.shape[1] == 1:
        return (a[:, 0] @ np.sin(arg)).astype(np.float64)
    return np.einsum("kn,kn->n", a, np.sin(arg)).astype(np.float64)


def _wavetables(h, size=2048):
    """One-period tables [L, size] of harmonic spectra h [L, K] (sine phases)."""
    h = np.atleast_2d(np.asarray(h, float))
    x = np.arange(size) / size
    k = np.arange(1, h.shape[1] + 1)
    return h @ np.sin(TWO_PI * np.outer(k, x))


def _wavetable_osc(freq, sr, h, level=None, size=2048, phase0=0.0):
    """Harmonic oscillator by table look-up (O(n), linear interpolation).

    freq: [n] Hz; h: [K] harmonic amplitudes, or [L, K] spectra at L levels with
    level: [n] in [0, L-1] (the spectrum is interpolated between neighbouring
    tables: level-dependent timbre). Harmonics above 0.48 sr at max(freq) are
    removed so the tables are band-limited."""
    h = np.atleast_2d(np.asarray(h, float)).copy()
    kmax = int(0.48 * sr / max(float(np.max(freq)), 1.0))
    h[:, kmax:] = 0.0
    tab = _wavetables(h, size)
    tab = np.concatenate([tab, tab[:, :1]], axis=1)
    ph = _phase(freq, sr, phase0)
    pos = (ph - np.floor(ph)) * size
    i = pos.astype(np.int64)
    fr = pos - i
    if tab.shape[0] == 1 or level is None:
        t0 = tab[0]
        return t0[i] + fr * (t0[i + 1] - t0[i])
    lv = np.clip(level, 0.0, tab.shape[0] - 1.0)
    j = np.minimum(lv.astype(np.int64), tab.shape[0] - 2)
    g = lv - j
    a = tab[j, i] + fr * (tab[j, i + 1] - tab[j, i])
    b = tab[j + 1, i] + fr * (tab[j + 1, i + 1] - tab[j + 1, i])
    return a + g * (b - a)


def _vel_amp(velocity):
    return (float(velocity) / 127.0) ** 1.6


# ---------------------------------------------------------------------------
# Karplus-Strong string


def _lagrange3(d):
    """4-tap Lagrange fractional-delay FIR for delay d (samples), best for d in [1, 2]."""
    k = np.arange(4)
    h = np.ones(4)
    for j in range(4):
        m = k != j
        h[m] *= (d - j) / (k[m] - j)
    return h


def ks_string(f0, n, sr, excitation, t60, bright):
    """Extended Karplus-Strong string: y[n] = x[n] + sum_j c_j y[n - M - j].

    f0: Hz; n: output samples; excitation: initial input (usually one period
    of shaped noise); t60: decay time (s) of the fundamental; bright: loss-filter
    parameter b in [0.5, 1) (loss H(w) = b + (1 - b) cos w; larger = brighter,
    slower decay of high partials). The loop FIR c = g * conv(loss, lagrange)
    has lags M..M+5, so blocks of M samples depend only on earlier blocks and
    each block is one numpy call."""
    P = sr / f0
    M = int(np.floor(P - 2.0))
    if M < 1:
        raise ValueError(f"f0 {f0} Hz too high for sr {sr}")
    d = P - 1.0 - M  # Lagrange delay in [1, 2); loss filter adds 1 sample
    b = float(bright)
    c = np.convolve([(1.0 - b) / 2.0, b, (1.0 - b) / 2.0], _lagrange3(d))
    h0 = b + (1.0 - b) * np.cos(TWO_PI * f0 / sr)
    c *= 10.0 ** (-3.0 / (t60 * f0)) / h0
    off = M + 5
    y = np.zeros(n + off)
    L = min(len(excitation), n)
    y[off:off + L] = excitation[:L]
    for s in range(0, n, M):
        e = min(s + M, n)
        y[off + s:off + e] += np.convolve(y[s:e + 5], c, "valid")
    return y[off:]


def _pluck_excitation(f0, sr, rng, velocity, cutoff_mul, beta):
    """One period of noise: velocity-dependent low-pass (Jaffe & Smith dynamics),
    pick-position comb (1 - z^-(beta P)) applied circularly, zero mean."""
    P = int(round(sr / f0))
    x = rng.uniform(-1.0, 1.0, P)
    v = float(velocity) / 127.0
    fc = f0 * cutoff_mul * (0.12 + 1.5 * v * v)  # soft plucks are darker
    X = np.fft.rfft(x)
    f = np.arange(len(X)) * sr / P
    X /= np.sqrt(1.0 + (f / fc) ** 2)
    x = np.fft.irfft(X, P)
    x = x - np.roll(x, max(1, int(round(beta * P))))
    x -= x.mean()
    return x / (np.max(np.abs(x)) + 1e-12)


def _plucked(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    # higher notes decay faster: T60 scales ~ f0^-0.5 around the voice's reference
    t60 = v["t60"] * (f0 / 220.0) ** -v["t60_slope"] * float(rng.uniform(0.85, 1.15))
    ring = min(duration, 2.5 * t60)
    n = int((ring + v["damp"] * 5) * sr)
    beta = v["beta"] * float(rng.uniform(0.8, 1.25))
    out = np.zeros(n)
    courses = v.get("course_cents", [0.0])
    pick = int(rng.integers(2 ** 32))  # one pick plucks both strings of a course alike
    for cents in courses:
        fc = f0 * 2.0 ** (cents / 1200.0)
        exc = _pluck_excitation(fc, sr, np.random.default_rng(pick), velocity, v["cutoff"], beta)
        out += ks_string(fc, n, sr, exc, t60, v["bright"])
    out /= len(courses)
    _release(out, sr, ring, v["damp"])
    if v.get("drive"):
        out = np.tanh(v["drive"] * out / (np.max(np.abs(out)) + 1e-9))
    return out


PLUCK_VOICES = {
    # t60 at 220 Hz (s), t60_slope, loss b, excitation cut-off (x f0), pick beta, damper tau
    "ks_guitar_steel": dict(t60=(2.5, 5.0), bright=(0.90, 0.975), cutoff=(10, 30), beta=(0.08, 0.25)),
    "ks_guitar_nylon": dict(t60=(1.8, 3.5), bright=(0.80, 0.93), cutoff=(4, 12), beta=(0.12, 0.3)),
    "ks_banjo": dict(t60=(0.6, 1.4), bright=(0.93, 0.99), cutoff=(20, 50), beta=(0.05, 0.14)),
    "ks_bass_electric": dict(t60=(3.0, 6.0), bright=(0.75, 0.92), cutoff=(5, 18), beta=(0.08, 0.3)),
    "ks_bass_acoustic": dict(t60=(0.9, 2.0), bright=(0.65, 0.85), cutoff=(3, 8), beta=(0.15, 0.35)),
    "ks_mandolin": dict(t60=(0.6, 1.3), bright=(0.92, 0.985), cutoff=(14, 35), beta=(0.07, 0.18)),
    "ks_ukulele": dict(t60=(0.5, 1.1), bright=(0.78, 0.92), cutoff=(3, 9), beta=(0.15, 0.3)),
    "ks_harpsichord": dict(t60=(1.5, 3.0), bright=(0.95, 0.995), cutoff=(30, 60), beta=(0.04, 0.1)),
    "ks_pizzicato": dict(t60=(0.3, 0.8), bright=(0.75, 0.9), cutoff=(3, 10), beta=(0.1, 0.3)),
}


def _draw_pluck(name, rng, program=None):
    spec = PLUCK_VOICES[name]
    v = {k: float(rng.uniform(*r)) for k, r in spec.items()}
    v["t60_slope"] = float(rng.uniform(0.3, 0.6))
    v["damp"] = float(rng.uniform(0.03, 0.09))
    if name == "ks_mandolin":
        detune = float(rng.uniform(2.0, 10.0))
        v["course_cents"] = [-detune / 2.0, detune / 2.0]
    if name == "ks_guitar_steel" and program in (29, 30):
        v["drive"] = float(rng.uniform(2.0, 8.0))
        v["t60"] *= 2.0
    if program == 28:  # palm-muted guitar: short and darker
        v["t60"], v["bright"] = float(rng.uniform(0.15, 0.4)), v["bright"] * 0.9
    if program == 26:  # jazz (hollow body, flat-wound): darker
        v["bright"], v["cutoff"] = v["bright"] * 0.92, v["cutoff"] * 0.5
    if name in ("ks_guitar_steel", "ks_guitar_nylon"):
        modes = [(rng.uniform(85, 115), rng.uniform(10, 25), rng.uniform(1.0, 3.0)),
                 (rng.uniform(170, 240), rng.uniform(12, 30), rng.uniform(1.0, 3.0)),
                 (rng.uniform(370, 460), rng.uniform(10, 25), rng.uniform(0.5, 2.0))]
        modes += [(float(np.exp(rng.uniform(np.log(500), np.log(3500)))), rng.uniform(4, 15),
                   rng.uniform(0.2, 1.2)) for _ in range(int(rng.integers(2, 5)))]
    elif name == "ks_banjo":
        modes = [(rng.uniform(250, 600), rng.uniform(8, 20), rng.uniform(1.5, 4.0)),
                 (rng.uniform(600, 1100), rng.uniform(8, 20), rng.uniform(0.8, 2.5))]
        modes += [(rng.uniform(1000, 3000), rng.uniform(2, 5), rng.uniform(0.8, 2.0))]
    elif name == "ks_bass_acoustic":
        modes = [(rng.uniform(60, 110), rng.uniform(8, 20), rng.uniform(1.5, 4.0)),
                 (rng.uniform(120, 250), rng.uniform(8, 20), rng.uniform(1.0, 3.0))]
    elif name == "ks_mandolin":
        modes = [(rng.uniform(240, 310), rng.uniform(10, 25), rng.uniform(1.0, 3.0)),
                 (rng.uniform(400, 700), rng.uniform(10, 25), rng.uniform(0.8, 2.5)),
                 (rng.uniform(900, 2500), rng.uniform(3, 10), rng.uniform(0.5, 1.5))]
    elif name == "ks_ukulele":
        modes = [(rng.uniform(180, 260), rng.uniform(10, 25), rng.uniform(1.0, 3.0)),
                 (rng.uniform(320, 520), rng.uniform(10, 25), rng.uniform(0.8, 2.5)),
                 (rng.uniform(700, 2000), rng.uniform(3, 10), rng.uniform(0.3, 1.2))]
    elif name == "ks_pizzicato":  # plucked violin/cello: the bowed-string body (mid scale)
        modes = _draw_bowed("bowed_viola", rng)["body"]
    elif name == "ks_harpsichord":
        modes = [(rng.uniform(200, 1500), rng.uniform(3, 10), rng.uniform(0.3, 1.5))
                 for _ in range(3)]
    else:  # electric bass: pickup resonance only
        modes = [(rng.uniform(1500, 4000), rng.uniform(1, 3), rng.uniform(0.2, 1.0))]
    v["body"] = [(float(a), float(b), float(c)) for a, b, c in modes]
    return v


# ---------------------------------------------------------------------------
# bowed strings

BOWED_BODY = {
    # (mode centre Hz, spread), violin values after Bissinger 2008; scale for others
    "violin": 1.0, "viola": 0.8, "cello": 0.4, "ensemble": 1.0,
}


def _draw_bowed(name, rng, program=None):
    kind = name.split("_", 1)[1]
    s = BOWED_BODY[kind]
    v = {"kind": kind,
         "vib_rate": float(rng.uniform(5.0, 7.0)), "vib_depth": float(rng.uniform(5.0, 25.0)),
         "attack": float(rng.uniform(0.06, 0.25)), "release": float(rng.uniform(0.1, 0.3)),
         "noise": float(rng.uniform(0.01, 0.05)), "tilt": float(rng.uniform(-0.3, 0.3)),
         "pulse_mix": float(rng.uniform(0.0, 0.3)), "bright": float(rng.uniform(0.6, 1.6)),
         # GM 44 tremolo strings: rapid bow strokes, |sin| amplitude at 6-8 strokes/s
         "trem": float(rng.uniform(6.0, 8.0)) if program == 44 else 0.0}
    modes = [(s * rng.uniform(260, 290), rng.uniform(12, 25), rng.uniform(1.0, 3.0)),   # A0
             (s * rng.uniform(390, 430), rng.uniform(10, 20), rng.uniform(0.5, 1.5)),   # CBR
             (s * rng.uniform(450, 490), rng.uniform(12, 30), rng.uniform(1.5, 4.0)),   # B1-
             (s * rng.uniform(520, 570), rng.uniform(12, 30), rng.uniform(1.5, 4.0))]   # B1+
    modes += [(s * float(np.exp(rng.uniform(np.log(600), np.log(1800)))), rng.uniform(8, 25),
               rng.uniform(0.3, 1.5)) for _ in range(int(rng.integers(3, 7)))]
    hill = 2000.0 + 1000.0 * rng.random() if kind != "cello" else 1000.0 + 600.0 * rng.random()
    modes.append((hill, rng.uniform(1.0, 2.5), rng.uniform(1.0, 3.0)))   # bridge hill
    v["body"] = [(float(a), float(b), float(c)) for a, b, c in modes]
    v["hp"] = 0.6 * s * 190.0  # body radiates little below the air mode
    return v


def _bowed(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    n = int((duration + v["release"]) * sr)
    players = 3 if v["kind"] == "ensemble" else 1
    out = np.zeros(n)
    for k in range(players):
        cents = 0.0 if players == 1 else float(rng.uniform(-12, 12))
        freq = f0 * 2.0 ** (cents / 1200.0) * _vibrato(
            n, sr, v["vib_rate"] * float(rng.uniform(0.95, 1.05)),
            v["vib_depth"] * float(rng.uniform(0.8, 1.2)), float(rng.uniform(0.1, 0.35)), rng)
        ph0 = float(rng.random())
        x = _saw(freq, sr, ph0)
        if v["pulse_mix"] > 0:
            x = (1 - v["pulse_mix"]) * x + v["pulse_mix"] * _pulse(freq, sr, 0.3, ph0)
        # bow pressure/speed fluctuation: slow random amplitude wander
        wob = 1.0 + 0.08 * np.sin(TWO_PI * float(rng.uniform(0.5, 3.0)) * np.arange(n) / sr
                                  + rng.uniform(0, 6.3))
        env = _asr(n, sr, v["attack"] * float(rng.uniform(0.7, 1.3)), duration, v["release"], 1.5)
        if v.get("trem"):
            tt = np.arange(n) / sr
            wob = wob * (0.35 + 0.65 * np.abs(np.sin(np.pi * v["trem"] * (1 + 0.05 * k) * tt
                                                       + rng.uniform(0, 3.1))))
        out += x * env * wob
    out /= players
    # louder bowing (more bow force and speed) is brighter: 1st-order low-pass at
    # f0 * (3 + 25 v^2) * voice factor
    fcb = f0 * (3.0 + 25.0 * (float(velocity) / 127.0) ** 2) * v["bright"]
    out = _apply_response(out, sr, lambda f: 1.0 / np.sqrt(1.0 + (f / fcb) ** 2))
    # bow noise: high-passed noise, stronger during the attack
    t = np.arange(n) / sr
    nenv = _asr(n, sr, 0.02, duration, 0.05) * (0.4 + 0.6 * np.exp(-t / 0.15))
    out += v["noise"] * _shaped_noise(n, sr, rng, lambda f: _band_mag(f, 2000, 7000)) * nenv
    return out


# ---------------------------------------------------------------------------
# winds, brass


def _harmonic_count(f0, sr, kmax=40):
    return int(max(1, min(kmax, (0.47 * sr) // f0)))


def _formant_weights(fk, formants):
    """Spectral envelope at harmonic frequencies fk: 1 + sum of resonance magnitudes."""
    w = np.full(len(fk), 0.15)
    for fc, q, g in formants:
        w += g * np.abs(_resonator(fk, fc, q))
    return w


def _draw_wind(name, rng, program=None):
    v = {"vib_rate": float(rng.uniform(4.5, 6.5)), "vib_depth": float(rng.uniform(0.0, 15.0)),
         "attack": float(rng.uniform(0.03, 0.1)), "release": float(rng.uniform(0.05, 0.15))}
    if name == "wind_flute":
        v["h"] = [1.0] + [10 ** (-float(rng.uniform(8, 25)) / 20.0) / (k ** 0.5) for k in range(2, 7)]
        v["breath"] = float(rng.uniform(0.03, 0.12))
        v["formants"] = []
        if program == 74:  # recorder: purer, little vibrato or breath
            v["h"] = [1.0] + [h * 0.5 for h in v["h"][1:]]
            v["vib_depth"], v["breath"] = v["vib_depth"] * 0.3, v["breath"] * 0.5
        elif program in (75, 77):  # pan flute, shakuhachi: breathy, chiff
            v["breath"] = float(rng.uniform(0.08, 0.18))
            v["attack"] = float(rng.uniform(0.02, 0.06))
    elif name == "wind_clarinet":
        v["even_db"] = float(rng.uniform(-35, -20))
        v["cross"] = float(rng.uniform(1500, 2500))
        v["formants"] = [(rng.uniform(1200, 1800), rng.uniform(1.5, 3), rng.uniform(0.5, 1.5))]
        v["slope"] = float(rng.uniform(0.7, 1.1))
        v["breath"] = float(rng.uniform(0.005, 0.02))
    elif name == "wind_sax":
        v["formants"] = [(rng.uniform(400, 800), rng.uniform(1.5, 3), rng.uniform(1.0, 2.5)),
                         (rng.uniform(1000, 2000), rng.uniform(2, 4), rng.uniform(0.4, 1.2))]
        v["slope"] = float(rng.uniform(0.6, 1.0))
        v["breath"] = float(rng.uniform(0.01, 0.04))
    else:  # brass
        trumpet = name == "brass_trumpet"
        fc = rng.uniform(1000, 1500) if trumpet else rng.uniform(450, 700)
        v["formants"] = [(fc, rng.uniform(1.0, 2.0), rng.uniform(1.5, 3.0))]
        if program == 59:  # muted trumpet: nasal peak ~1.5-2.5 kHz, weak fundamental
            v["formants"] = [(rng.uniform(1500, 2500), rng.uniform(3, 6), rng.uniform(3.0, 6.0))]
            v["mute_hp"] = float(rng.uniform(400, 800))
        v["gamma"] = float(rng.uniform(0.15, 0.35))
        v["slope"] = float(rng.uniform(0.3, 0.6))
        v["lip_cents"] = float(rng.uniform(30, 80))
        v["breath"] = float(rng.uniform(0.003, 0.015))
        v["attack"] = float(rng.uniform(0.02, 0.06))
    return v


def _wind(name, pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    n = int((duration + v["release"]) * sr)
    t = np.arange(n) / sr
    freq = f0 * _vibrato(n, sr, v["vib_rate"], v["vib_depth"], float(rng.uniform(0.15, 0.4)), rng)
    vel = float(velocity) / 127.0
    env = _asr(n, sr, v["attack"] * float(rng.uniform(0.7, 1.4)), duration, v["release"], 1.0)
    K = _harmonic_count(f0 * 1.02, sr)
    k = np.arange(1, K + 1, dtype=float)
    fk = k * f0
    if name == "wind_flute":
        h = np.zeros(K)
        m = min(K, len(v["h"]))
        h[:m] = v["h"][:m]
        h[1:] *= 0.5 + vel  # overblown/brighter when loud
        out = _wavetable_osc(freq, sr, h) * env
    elif name in ("wind_clarinet", "wind_sax"):
        h = k ** -v["slope"] * _formant_weights(fk, v["formants"])
        if name == "wind_clarinet":
            even = (k % 2 == 0) & (fk < v["cross"])
            h[even] *= 10 ** (v["even_db"] / 20.0)
        h *= np.exp(-(k - 1) * (1.0 - vel) * 0.08)  # softer = darker
        out = _wavetable_osc(freq, sr, h) * env
    else:  # brass: spectrum grows with amplitude; lip attack
        settle = np.exp(-t / float(rng.uniform(0.02, 0.05)))
        freq = freq * 2.0 ** (-v["lip_cents"] * settle / 1200.0)
        over = 1.0 + 0.25 * vel * (t / 0.03) * np.exp(1 - t / 0.03)  # overshoot at ~30 ms
        e = np.clip(env * over * (0.3 + 0.7 * vel), 0.0, 1.3)
        h = k ** -v["slope"] * _formant_weights(fk, v["formants"])
        # spectra at 6 levels e_l: harmonic k ~ e_l^(1 + gamma (k - 1)), interpolated by e(t)
        levels = np.linspace(0.0, 1.3, 6)
        H = h[None, :] * levels[:, None] ** (1.0 + v["gamma"] * (k[None, :] - 1.0))
        if v.get("mute_hp"):
            H = H * _band_mag(fk, v["mute_hp"], None, 2)[None, :]
        out = _wavetable_osc(freq, sr, H, level=e / 1.3 * 5.0)
    if v.get("breath"):
        bw = max(f0 * 0.5, 150.0)
        nmag = (lambda f: np.exp(-0.5 * ((f - f0) / bw) ** 2) + 0.3 * _band_mag(f, 1500, 6000)) \
            if name == "wind_flute" else (lambda f: _band_mag(f, 1000, 5000))
        nenv = env * (1.0 + 2.0 * np.exp(-t / 0.05))  # chiff / attack noise
        out += v["breath"] * _shaped_noise(n, sr, rng, nmag) * nenv * np.sqrt(np.mean(out ** 2) + 1e-12) * 3
    return out


# ---------------------------------------------------------------------------
# organ, accordion, synthesizer

DRAWBAR_RATIOS = np.array([0.5, 1.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
DRAWBAR_PRESETS = ["888000000", "888888888", "808000008", "868000000", "008888000",
                   "800000888", "688600000", "888800000", "838000000", "006876400"]


def _draw_organ(name, rng, program=None):
    if rng.random() < 0.6:
        reg = DRAWBAR_PRESETS[int(rng.integers(len(DRAWBAR_PRESETS)))]
        levels = np.array([int(c) for c in reg], float)
    else:
        levels = rng.integers(0, 9, 9).astype(float)
        levels[2] = max(levels[2], 4)
    amp = np.where(levels > 0, 10 ** (-3.0 * (8 - levels) / 20.0), 0.0)
    v = {"amps": amp, "click": float(rng.uniform(0.0, 0.08)),
         "rotary": float(rng.choice([0.0, 0.8, 6.5])) * float(rng.uniform(0.85, 1.15)),
         "rot_depth": float(rng.uniform(0.1, 0.35)), "drive": 0.0, "perc": 0.0,
         "attack": float(rng.uniform(0.005, 0.02)), "release": float(rng.uniform(0.02, 0.08))}
    if program == 17 or rng.random() < 0.15:
        v["perc"] = float(rng.uniform(0.5, 1.2))
        v["perc_ratio"] = float(rng.choice([2.0, 3.0]))
    if program == 18:
        v["drive"] = float(rng.uniform(1.5, 5.0))
    if program in (19, 20):  # church / reed organ: pipe-like slower attack, no rotary
        v["rotary"] = 0.0
        v["attack"] = float(rng.uniform(0.03, 0.09))
        v["chiff"] = float(rng.uniform(0.02, 0.1))
    return v


def _organ(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    n = int((duration + v["release"]) * sr)
    t = np.arange(n) / sr
    freq = np.full(n, f0)
    if v["rotary"]:
        freq *= 1.0 + 0.002 * np.sin(TWO_PI * v["rotary"] * t)
    env = _asr(n, sr, v["attack"], duration, v["release"])
    # drawbar partials are harmonics 1, 3, 2, 4, 6, 8, 10, 12, 16 of f0 / 2
    h = np.zeros(16)
    h[(DRAWBAR_RATIOS * 2).astype(int) - 1] = v["amps"]
    out = _wavetable_osc(freq * 0.5, sr, h, phase0=float(rng.random())) * env
    if v["perc"]:
        out += v["perc"] * np.sin(TWO_PI * v["perc_ratio"] * _phase(freq, sr)) * np.exp(-t / 0.2) * env
    if v["rotary"]:
        out *= 1.0 - v["rot_depth"] * 0.5 * (1 + np.sin(TWO_PI * v["rotary"] * t + 1.0))
    if v["drive"]:
        out = np.tanh(v["drive"] * out / (np.max(np.abs(out)) + 1e-9))
    click = v["click"] + v.get("chiff", 0.0)
    if click:
        m = min(n, int(0.03 * sr))
        burst = _shaped_noise(m, sr, rng, lambda f: _band_mag(f, 800, 6000))
        out[:m] += click * burst * np.exp(-np.arange(m) / (0.005 * sr)) * np.max(np.abs(out))
    return out


def _draw_accordion(name, rng, program=None):
    n_reeds = int(rng.integers(2, 4))
    spread = float(rng.uniform(3.0, 25.0))
    cents = [0.0, spread, -spread * float(rng.uniform(0.6, 1.0))][:n_reeds]
    return {"cents": cents, "octave": float(rng.uniform(0.2, 0.7)) if rng.random() < 0.35 else 0.0,
            "width": float(rng.uniform(0.15, 0.35)),
            "formant": (float(rng.uniform(800, 2500)), float(rng.uniform(1.0, 3.0))),
            "attack": float(rng.uniform(0.02, 0.07)), "release": float(rng.uniform(0.04, 0.1)),
            "body": [(float(rng.uniform(800, 2500)), float(rng.uniform(1.0, 3.0)), 2.0)],
            "hp": 150.0}


def _accordion(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    n = int((duration + v["release"]) * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    bellows = 1.0 + 0.05 * np.sin(TWO_PI * float(rng.uniform(0.3, 1.5)) * t + rng.uniform(0, 6.3))
    for c in v["cents"]:
        f = np.full(n, f0 * 2.0 ** (c / 1200.0))
        out += _pulse(f, sr, v["width"], float(rng.random()))
    if v["octave"]:
        out += v["octave"] * _pulse(np.full(n, f0 * 0.5), sr, v["width"], float(rng.random()))
    return out * _asr(n, sr, v["attack"], duration, v["release"]) * bellows


def _draw_synth(name, rng, program=None):
    pad = program is not None and 88 <= program <= 95
    osc = str(rng.choice(["saw", "square", "pulse"]))
    return {"osc": osc, "width": float(rng.uniform(0.1, 0.45)),
            "n_osc": int(rng.integers(1, 4)), "detune": float(rng.uniform(3, 20)),
            "cut0": float(rng.uniform(200, 1500)), "cut_env": float(rng.uniform(1.0, 12.0)),
            "cut_decay": float(rng.uniform(0.05, 0.8)), "q": float(rng.uniform(0.7, 6.0)),
            "track": float(rng.uniform(0.0, 1.0)),
            "attack": float(rng.uniform(0.3, 1.2) if pad else rng.uniform(0.003, 0.05)),
            "release": float(rng.uniform(0.3, 0.8) if pad else rng.uniform(0.02, 0.2)),
            "vib_depth": float(rng.uniform(0, 12)), "vib_rate": float(rng.uniform(4, 7))}


def _lowpass2_mag(f, fc, q):
    """|H| of an analogue 2-pole resonant low-pass: 1 / |1 - (f/fc)^2 + j f/(fc q)|."""
    r = f / fc
    return 1.0 / np.sqrt((1.0 - r * r) ** 2 + (r / q) ** 2)


def _tv_lowpass(x, sr, cut_fn, q, frame=512):
    """Time-varying resonant low-pass by STFT (Hann, 50 % overlap-add).

    cut_fn(t [s]) -> cut-off (Hz) per frame centre."""
    hop = frame // 2
    n = len(x)
    n_frames = int(np.ceil((n + hop) / hop)) + 1
    xp = np.concatenate([np.zeros(hop), x, np.zeros(n_frames * hop + frame - n - hop)])
    idx = np.arange(n_frames)[:, None] * hop + np.arange(frame)[None, :]
    win = np.sin(np.pi * (np.arange(frame) + 0.5) / frame) ** 2  # sums to 1 at 50 %
    X = np.fft.rfft(xp[idx] * win, axis=1)
    f = np.arange(frame // 2 + 1) * sr / frame
    tc = (np.arange(n_frames) * hop + frame / 2 - hop) / sr
    fc = np.clip(cut_fn(tc), 30.0, 0.45 * sr)
    X *= _lowpass2_mag(f[None, :], fc[:, None], q)
    y = np.fft.irfft(X, frame, axis=1)
    out = np.zeros(n_frames * hop + frame)
    for j in range(2):  # overlap-add with two non-overlapping strided sums
        sel = y[j::2].ravel()
        start = j * hop
        out[start:start + len(sel)] += sel
    return out[hop:hop + n]


def _synth(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    n = int((duration + v["release"]) * sr)
    vib = _vibrato(n, sr, v["vib_rate"], v["vib_depth"], 0.3, rng)
    out = np.zeros(n)
    for i in range(v["n_osc"]):
        c = 0.0 if i == 0 else v["detune"] * (1 if i == 1 else -1)
        f = f0 * 2.0 ** (c / 1200.0) * vib
        ph = float(rng.random())
        if v["osc"] == "saw":
            out += _saw(f, sr, ph)
        else:
            out += _pulse(f, sr, 0.5 if v["osc"] == "square" else v["width"], ph)
    env = _asr(n, sr, v["attack"], duration, v["release"])
    vel = float(velocity) / 127.0
    base = v["cut0"] * (f0 / 261.6) ** v["track"]
    peak = base * (1.0 + v["cut_env"] * vel)
    out = _tv_lowpass(out, sr, lambda tt: base + (peak - base) * np.exp(-tt / v["cut_decay"]), v["q"])
    return out * env


# ---------------------------------------------------------------------------
# mallets, piano, voice

MALLET_RATIOS = {
    "marimba": [1.0, 3.99, 9.2], "xylophone": [1.0, 3.0, 6.0], "vibraphone": [1.0, 4.0, 10.0],
    "glockenspiel": [1.0, 2.756, 5.404, 8.933], "celesta": [1.0, 2.756, 5.404],
    "music_box": [1.0, 6.267, 17.55],
}
MALLET_PROGRAMS = {8: "celesta", 9: "glockenspiel", 10: "music_box", 11: "vibraphone",
                   12: "marimba", 13: "xylophone"}


def _draw_mallet(name, rng, program=None):
    kind = MALLET_PROGRAMS.get(program) or str(rng.choice(list(MALLET_RATIOS)))
    t60 = {"marimba": (0.6, 1.5), "xylophone": (0.3, 0.8), "vibraphone": (1.5, 4.0),
           "glockenspiel": (1.5, 3.5), "celesta": (0.8, 2.0), "music_box": (1.0, 2.5)}[kind]
    return {"kind": kind, "t60": float(rng.uniform(*t60)),
            "hard": float(rng.uniform(0.2, 1.0)),
            "detune": rng.uniform(-0.01, 0.01, len(MALLET_RATIOS[kind])),
            "trem": float(rng.uniform(4.0, 7.0)) if kind == "vibraphone" and rng.random() < 0.6 else 0.0,
            "release": float(rng.uniform(0.05, 0.2))}


def _mallet(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    ratios = np.array(MALLET_RATIOS[v["kind"]]) * (1.0 + v["detune"])
    ratios = ratios[ratios * f0 < 0.47 * sr]
    t60 = v["t60"] * (f0 / 523.0) ** -0.4
    ring = min(duration + 0.5, 2.0 * t60) if v["kind"] != "vibraphone" else min(duration, 2 * t60)
    n = int((ring + v["release"]) * sr)
    t = np.arange(n) / sr
    vel = float(velocity) / 127.0
    k = np.arange(len(ratios))
    amps = (v["hard"] * (0.4 + 0.6 * vel)) ** (0.5 * k) * np.array([1.0, 0.5, 0.3, 0.2])[:len(ratios)]
    decays = t60 / (1.0 + 0.8 * k * ratios ** 0.5)
    env = amps[:, None] * np.exp(-6.9 * t[None, :] / decays[:, None])
    out = _additive(np.full(n, f0), env, sr, ratios, phases=np.zeros(len(ratios)))
    if v["trem"]:
        out *= 1.0 - 0.4 * 0.5 * (1 + np.sin(TWO_PI * v["trem"] * t))
    m = min(n, int(0.01 * sr))
    out[:m] += 0.1 * v["hard"] * vel * _shaped_noise(m, sr, rng, lambda f: _band_mag(f, 500, 6000)) \
        * np.exp(-np.arange(m) / (0.002 * sr))
    _release(out, sr, ring, v["release"] / 4)
    return out


def _draw_piano(name, rng, program=None):
    epiano = program in (4, 5)
    return {"epiano": epiano, "b_scale": float(rng.uniform(0.6, 1.6)),
            "strike": float(rng.uniform(1 / 9, 1 / 7)), "unison": float(rng.uniform(0.3, 2.0)),
            "t60": float(rng.uniform(6.0, 14.0)), "bright": float(rng.uniform(0.6, 1.2)),
            "bell": float(rng.uniform(2.0, 5.0) if epiano else 0.0),
            "bell_ratio": float(rng.choice([7.0, 14.0, 5.0])),
            "release": float(rng.uniform(0.08, 0.2))}


def _piano(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    vel = float(velocity) / 127.0
    t60 = v["t60"] * (f0 / 65.0) ** -0.6
    ring = min(duration, 3.0 * t60)
    n = int((ring + v["release"]) * sr)
    t = np.arange(n) / sr
    if v["epiano"]:
        ratios = np.array([1.0, 2.0, 3.0, v["bell_ratio"]])
        amps = np.array([1.0, 0.3 * vel, 0.1 * vel, 0.15 * v["bell"] * vel])
        decays = np.array([t60, t60 / 2, t60 / 3, 0.08])
        env = amps[:, None] * np.exp(-6.9 * t[None, :] / decays[:, None])
        out = _additive(np.full(n, f0), env, sr, ratios, phases=np.zeros(4))
    else:
        B = 1e-4 * v["b_scale"] * 2.0 ** ((pitch - 60.0) / 18.0)
        K = _harmonic_count(f0 * 1.3, sr, 24)
        k = np.arange(1, K + 1, dtype=float)
        ratios = k * np.sqrt(1.0 + B * k * k)
        keep = ratios * f0 < 0.47 * sr
        ratios, k = ratios[keep], k[keep]
        amps = np.abs(np.sin(np.pi * k * v["strike"])) / k ** (1.4 - 0.6 * vel * v["bright"])
        decays = t60 / (1.0 + 0.15 * k * k ** 0.5)
        # control rate (32 samples): double decay, prompt sound (fast) + aftersound
        # (slow), Weinreich 1977; two unison strings detuned by v["unison"] cents
        # beat at k * f0 * unison / 1200 Hz (with a random partial phase offset)
        tc = np.arange(0, n + 32, 32) / sr
        dfk = ratios * f0 * (2.0 ** (v["unison"] / 1200.0) - 1.0)
        beat = np.abs(np.cos(np.pi * dfk[:, None] * tc[None, :] + rng.uniform(0, 1.5, len(k))[:, None]))
        envc = amps[:, None] * (0.7 * np.exp(-6.9 * tc[None, :] / (decays[:, None] * 0.15))
                                + 0.3 * np.exp(-6.9 * tc[None, :] / decays[:, None])) * (0.4 + 0.6 * beat)
        env = np.repeat(envc, 32, axis=1)[:, :n]
        out = _additive(np.full(n, f0), env, sr, ratios, phases=rng.uniform(0, TWO_PI, len(ratios)))
        m = min(n, int(0.03 * sr))
        out[:m] += 0.4 * vel * _shaped_noise(m, sr, rng, lambda f: _band_mag(f, 50, 1500 + 3000 * vel)) \
            * np.exp(-np.arange(m) / (0.006 * sr)) * np.max(np.abs(out[:m]) + 1e-9)
    _release(out, sr, ring, v["release"] / 4)
    return out


# vowel formants F1-F3 (Hz), Peterson & Barney 1952 averages (men, women)
VOWELS = {
    "i": ((270, 2290, 3010), (310, 2790, 3310)), "e": ((530, 1840, 2480), (610, 2330, 2990)),
    "a": ((730, 1090, 2440), (850, 1220, 2810)), "o": ((570, 840, 2410), (590, 920, 2710)),
    "u": ((300, 870, 2240), (370, 950, 2670)), "ae": ((660, 1720, 2410), (860, 2050, 2850)),
}


def _draw_voice(name, rng, program=None):
    return {"female": bool(rng.random() < 0.5), "scale": float(rng.uniform(0.9, 1.1)),
            "vowel": str(rng.choice(list(VOWELS) if program != 53 else ["o", "u"])),
            "vib_rate": float(rng.uniform(4.5, 6.5)), "vib_depth": float(rng.uniform(10, 50)),
            "breath": float(rng.uniform(0.01, 0.06)), "attack": float(rng.uniform(0.05, 0.15)),
            "release": float(rng.uniform(0.08, 0.2)), "tilt": float(rng.uniform(0.8, 1.3)),
            # GM 52 choir aahs: 3-4 singers (detuned, own vibrato); 53/54 one voice
            "singers": int(rng.integers(3, 5)) if program == 52 else 1}


def _voice(pitch, velocity, duration, sr, rng, v):
    f0 = float(midi_hz(pitch))
    n = int((duration + v["release"]) * sr)
    freq = f0 * _vibrato(n, sr, v["vib_rate"], v["vib_depth"], float(rng.uniform(0.15, 0.4)), rng)
    vowel = v["vowel"] if rng.random() < 0.7 else str(rng.choice(list(VOWELS)))
    fm = np.array(VOWELS[vowel][1 if v["female"] else 0], float) * v["scale"]
    K = _harmonic_count(f0 * 1.05, sr, 80)
    k = np.arange(1, K + 1, dtype=float)
    vel = float(velocity) / 127.0
    bws = np.array([80.0, 100.0, 120.0])
    w = k ** -(v["tilt"] + 0.5 * (1 - vel))
    w = w * _formant_weights(k * f0, [(fm[i], fm[i] / bws[i], (1.0, 0.6, 0.3)[i]) for i in range(3)])
    env = _asr(n, sr, v["attack"], duration, v["release"])
    out = _wavetable_osc(freq, sr, w, phase0=float(rng.random())) * env
    for _ in range(v.get("singers", 1) - 1):
        fr = f0 * 2.0 ** (float(rng.uniform(-15, 15)) / 1200.0) * _vibrato(
            n, sr, v["vib_rate"] * float(rng.uniform(0.9, 1.1)), v["vib_depth"],
            float(rng.uniform(0.1, 0.4)), rng)
        out += _wavetable_osc(fr, sr, w, phase0=float(rng.random())) * env
    nz = _shaped_noise(n, sr, rng, lambda f: sum(np.abs(_resonator(f, fm[i], 4.0)) for i in range(3)))
    return out + v["breath"] * nz * env * np.sqrt(np.mean(out ** 2) + 1e-12) * 3


# ---------------------------------------------------------------------------
# drums and cymbals

TR808_HAT = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0])  # Hz, TR-808 hat oscillators


def _draw_kit(name, rng, program=None, kit=None):
    electronic = kit in (24, 25) or (kit is None and rng.random() < 0.2)
    v = {"electronic": electronic,
         "kick_f": float(rng.uniform(45, 65)), "kick_sweep": float(rng.uniform(1.5, 4.0)),
         "kick_decay": float(rng.uniform(0.3, 0.8) if electronic else rng.uniform(0.12, 0.35)),
         "kick_click": float(rng.uniform(0.1, 0.6)),
         "snare_f": float(rng.uniform(160, 240)), "snare_noise": float(rng.uniform(0.5, 2.0)),
         "snare_decay": float(rng.uniform(0.1, 0.3)), "snare_lo": float(rng.uniform(800, 2500)),
         "hat_scale": float(rng.uniform(0.8, 1.6)), "hat_lp": float(rng.uniform(6000, 7800)),
         "hat_hp": float(rng.uniform(3000, 6000)), "hat_metal": float(rng.uniform(0.3, 1.0)),
         "tom_base": float(rng.uniform(70, 110)), "tom_decay": float(rng.uniform(0.25, 0.7))}
    # one metallic spectrum per cymbal of the kit: (centre Hz, relative level) peaks
    v["cymbals"] = {}
    for note in (49, 51, 52, 55, 57, 59):
        m = int(rng.integers(20, 50))
        lo = 250.0 if note in (52, 51, 59) else 350.0
        v["cymbals"][note] = {
            "peaks": np.exp(rng.uniform(np.log(lo), np.log(7500), m)),
            "gains": rng.uniform(0.3, 1.0, m),
            "decay": float({49: rng.uniform(1.5, 3.0), 57: rng.uniform(1.5, 3.0),
                            55: rng.uniform(0.6, 1.2), 52: rng.uniform(1.0, 2.0),
                            51: rng.uniform(2.0, 4.0), 59: rng.uniform(2.0, 4.0)}[note]),
            "bell": float(rng.uniform(0.2, 1.0)) if note in (51, 59) else 0.0,
            "bell_f": float(rng.uniform(600, 1100)), "bright": float(rng.uniform(2000, 5000))}
    return v


def _membrane(f, n, sr, rng, decay, drop=0.3, modes=(1.0, 1.59, 2.14), gains=(1.0, 0.4, 0.25)):
    """Pitched membrane: a few decaying modes (ideal-membrane ratios) with a pitch drop."""
    t = np.arange(n) / sr
    sweep = 1.0 + drop * np.exp(-t / 0.04)
    dec = decay * np.array([1.0, 0.6, 0.4, 0.3])[:len(modes), None]
    amps = np.array(gains)[:, None] * np.exp(-t[None, :] / dec)
    return _additive(f * sweep, amps, sr, modes, phases=np.zeros(len(modes)))


def drum_hit(note, velocity, sr, rng, v, max_len=None):
    """One drum-channel hit (GM note number) -> (audio, class name).

    max_len: at most this many samples are needed (cymbal tails are cut)."""
    vel = float(velocity) / 127.0
    if note in v["cymbals"]:
        return _cymbal(note, vel, sr, rng, v["cymbals"][note], max_len), "cymbals"
    if note in (35, 36):
        d = v["kick_decay"]
        n = int(5 * d * sr)
        t = np.arange(n) / sr
        f = v["kick_f"] * (1.0 + v["kick_sweep"] * np.exp(-t / 0.03))
        y = np.sin(TWO_PI * np.cumsum(f) / sr) * np.exp(-t / d)
        m = min(n, int(0.01 * sr))
        y[:m] += v["kick_click"] * vel * _shaped_noise(m, sr, rng, lambda ff: _band_mag(ff, 1000, 6000)) \
            * np.exp(-np.arange(m) / (0.002 * sr))
        if not v["electronic"]:
            y += 0.15 * _shaped_noise(n, sr, rng, lambda ff: _band_mag(ff, 40, 300)) * np.exp(-t / (d * 0.5))
        return y, "drums"
    if note in (38, 40):
        d = v["snare_decay"] * float(rng.uniform(0.9, 1.1))
        n = int(4 * d * sr)
        t = np.arange(n) / sr
        tone = _membrane(v["snare_f"], n, sr, rng, d * 0.4, 0.1, (1.0, 1.65), (1.0, 0.6))
        nz = _shaped_noise(n, sr, rng, lambda ff: _band_mag(ff, v["snare_lo"], 7500))
        return tone + v["snare_noise"] * (0.6 + 0.6 * vel) * nz * np.exp(-t / d), "drums"
    if note == 37:  # side stick
        n = int(0.1 * sr)
        t = np.arange(n) / sr
        y = np.sin(TWO_PI * float(rng.uniform(400, 800)) * t) * np.exp(-t / 0.01)
        return y + 0.5 * _shaped_noise(n, sr, rng, lambda ff: _band_mag(ff, 1500, 6000)) * np.exp(-t / 0.005), "drums"
    if note == 39:  # hand clap: 3-4 bursts then a tail
        n = int(0.35 * sr)
        t = np.arange(n) / sr
        env = np.exp(-t / 0.08)
        for b in range(int(rng.integers(3, 5))):
            t0 = b * float(rng.uniform(0.008, 0.013))
            env += (t >= t0) * np.exp(-np.maximum(t - t0, 0) / 0.004)
        return _shaped_noise(n, sr, rng, lambda ff: _band_mag(ff, 800, 2500)) * env, "drums"
    if note in (42, 44, 46, 54):
        d = {42: 0.04, 44: 0.06, 46: 0.4, 54: 0.2}[note] * float(rng.uniform(0.7, 1.4))
        n = int(min(5 * d, 1.0) * sr)
        t = np.arange(n) / sr
        ph = np.outer(TR808_HAT * v["hat_scale"], t) + rng.random(6)[:, None]
        metal = np.sum(np.sign(np.sin(TWO_PI * ph)), axis=0) / 6.0
        nz = rng.standard_normal(n)
        x = v["hat_metal"] * metal + (1 - v["hat_metal"] * 0.7) * nz
        x = _apply_response(x, sr, lambda ff: _band_mag(ff, v["hat_hp"], v["hat_lp"], 3))
        env = np.exp(-t / d)
        if note == 54:  # tambourine: jingle bursts
            env = env * (1.0 + (np.sin(TWO_PI * 25.0 * t) > 0.7))
        return x * env * (0.7 + 0.3 * vel), "drums"
    if note == 56:  # cowbell
        n = int(0.4 * sr)
        t = np.arange(n) / sr
        x = _pulse(np.full(n, 540.0), sr, 0.5) + _pulse(np.full(n, 800.0), sr, 0.5)
        x = _apply_response(x, sr, lambda ff: _band_mag(ff, 500, 3000))
        return x * (0.6 * np.exp(-t / 0.02) + 0.4 * np.exp(-t / 0.12)), "drums"
    if note in (69, 70):  # cabasa, maracas
        n = int(0.12 * sr)
        t = np.arange(n) / sr
        env = (t / 0.01).clip(0, 1) * np.exp(-t / 0.03)
        return _shaped_noise(n, sr, rng, lambda ff: _band_mag(ff, 4000, 7800)) * env, "drums"
    if note == 75:  # claves
        n = int(0.15 * sr)
        t = np.arange(n) / sr
        return np.sin(TWO_PI * float(rng.uniform(2200, 2600)) * t) * np.exp(-t / 0.025), "drums"
    # toms (41-50), bongos/congas (60-64) and anything else: pitched membrane
    if 60 <= note <= 64:
        f = float(rng.uniform(180, 450)) * (1.0 + 0.15 * (64 - note))
        d = 0.15
    else:
        f = v["tom_base"] * 2.0 ** ((note - 41) / 9.0)
        d = v["tom_decay"]
    n = int(4 * d * sr)
    t = np.arange(n) / sr
    y = _membrane(f, n, sr, rng, d, 0.25)
    m = min(n, int(0.01 * sr))
    y[:m] += 0.3 * _shaped_noise(m, sr, rng, lambda ff: _band_mag(ff, 500, 5000)) * np.exp(-np.arange(m) / (0.002 * sr))
    return y, "drums"


CYMBAL_TAKES = 3


def _cymbal(note, vel, sr, rng, c, max_len=None):
    """Noise whose spectrum carries the cymbal's metallic peaks; bright fast layer + dark long layer."""
    d = c["decay"] * (0.7 + 0.5 * vel)
    n = int(min(2.5 * d, 6.0) * sr)
    t = np.arange(n) / sr
    peaks, gains = c["peaks"], c["gains"]

    def metallic(f):
        # each peak a Lorentzian ~ 1.5 % wide; sum with a broadband high-passed floor
        m = 0.3 * _band_mag(f, 300, None)
        for p, g in zip(peaks, gains):
            m = m + g / (1.0 + ((f - p) / (0.015 * p)) ** 2)
        return m

    # a cymbal has CYMBAL_TAKES noise realisations of its spectrum (rendered on
    # first use, full length); each hit picks one and applies its own envelope
    takes = c.setdefault(("takes", sr), [])
    if len(takes) < CYMBAL_TAKES:
        n_max = int(6.0 * sr)
        n_fft = _fft_len(n_max)
        f = _freqs(n_fft, sr)
        mag, hp = metallic(f), _band_mag(f, c["bright"], None, 1)
        X = (rng.standard_normal(len(mag)) + 1j * rng.standard_normal(len(mag))) * mag
        X[0] = 0.0
        body = np.fft.irfft(X, n_fft)[:n_max]
        bright = np.fft.irfft(X * hp, n_fft)[:n_max]
        scale = np.sqrt(np.mean(body ** 2)) + 1e-12
        takes.append((body / scale, bright / scale))
        body, bright = takes[-1]
    else:
        body, bright = takes[int(rng.integers(len(takes)))]
    n = min(n, max_len) if max_len else n
    t = t[:n]
    body, bright = body[:n], bright[:n]
    y = bright * np.exp(-t / (0.15 * d)) * (0.5 + vel) + body * np.exp(-t / (0.4 * d)) * 0.6
    if note == 52:  # china: trashier, more mid-range, faster
        y = np.tanh(2.0 * y / (np.max(np.abs(y)) + 1e-9))
    a = min(n, int(0.002 * sr))
    y[:a] *= np.linspace(0, 1, a)
    if c["bell"]:
        bell_f = c["bell_f"]
        if ("bell", sr) not in c:  # bell partials (cup of the ride), cached
            tb = np.arange(int(6.0 * sr)) / sr
            c[("bell", sr)] = _additive(np.full(len(tb), bell_f), (np.array([1.0, 0.6, 0.4])[:, None]
                                        * np.exp(-tb / 0.8)[None, :]), sr,
                                        [1.0, 2.32, 3.86], phases=np.zeros(3))
        bell = c[("bell", sr)][:n]
        y = y + c["bell"] * bell * np.sqrt(np.mean(y[:int(0.2 * sr)] ** 2))
    return y


# ---------------------------------------------------------------------------
# registry, choice per class / program, part rendering

def _mk_pluck(name):
    return lambda p, vel, dur, sr, rng, v: _plucked(p, vel, dur, sr, rng, v)


def _mk_wind(name):
    return lambda p, vel, dur, sr, rng, v: _wind(name, p, vel, dur, sr, rng, v)


# synth name -> (draw voice(name, rng, program), render note(pitch, vel, dur, sr, rng, voice))
SYNTHS = {name: (_draw_pluck, _mk_pluck(name)) for name in PLUCK_VOICES}
SYNTHS.update({name: (_draw_bowed, _bowed) for name in
               ("bowed_violin", "bowed_viola", "bowed_cello", "bowed_ensemble")})
SYNTHS.update({name: (_draw_wind, _mk_wind(name)) for name in
               ("wind_flute", "wind_clarinet", "wind_sax", "brass_trumpet", "brass_trombone")})
SYNTHS.update({"organ_drawbar": (_draw_organ, _organ),
               "accordion_reeds": (_draw_accordion, _accordion),
               "synth_subtractive": (_draw_synth, _synth),
               "modal_mallet": (_draw_mallet, _mallet),
               "piano_additive": (_draw_piano, _piano),
               "voice_formant": (_draw_voice, _voice)})
DRUM_SYNTHS = ("drum_kit", "drum_cymbal")


def draw_voice(name, rng, program=None):
    """Per-part timbre parameters of synthesiser `name` (dict)."""
    if name in DRUM_SYNTHS:
        return _draw_kit(name, rng, program)
    return SYNTHS[name][0](name, rng, program)


def render_note(name, pitch, velocity, duration, sr, rng, voice=None, program=None):
    """One note of synthesiser `name`, dry (without the per-part body). float64 [n]."""
    if voice is None:
        voice = draw_voice(name, rng, program)
    return SYNTHS[name][1](pitch, velocity, duration, sr, rng, voice)


def note_with_body(name, pitch, velocity, duration, sr, rng, voice=None, program=None):
    """One note including the part-level body/formant filter (for tests and listening)."""
    if voice is None:
        voice = draw_voice(name, rng, program)
    y = render_note(name, pitch, velocity, duration, sr, rng, voice)
    return _part_filter(y, sr, voice)


def _part_filter(y, sr, voice):
    """Per-part filter (one FFT): body/formant resonators of the voice, its
    high-pass (bowed bodies radiate little below the air mode) and a 20 Hz
    2nd-order high-pass (no DC or subsonic drift) for every part."""
    body = _body_response(voice["body"], direct=float(voice.get("direct", 1.0))) \
        if "body" in voice else None
    hp = voice.get("hp")

    def resp(f):
        h = _band_mag(f, 20.0, None, 2).astype(complex)
        if body is not None:
            h *= body(f)
        if hp:
            h *= _band_mag(f, hp, None, 1)
        return h
    return _apply_response(y, sr, resp)


def choose_synth(cls, program, rng):
    """Synthesiser name for a music.py part (class name + GM program chosen there)."""
    if cls == "guitar":
        return "ks_guitar_nylon" if program == 24 else "ks_guitar_steel"
    if cls == "banjo":
        return "ks_banjo"
    if cls == "bass":
        if program in (38, 39):
            return "synth_subtractive"
        return "ks_bass_acoustic" if program == 32 else "ks_bass_electric"
    if cls == "mandolin":
        return "ks_mandolin"
    if cls == "ukulele":
        return "ks_ukulele"
    if cls in ("violin", "cello"):
        if program == 45:
            return "ks_pizzicato"
        if program in (44, 48, 49):
            return "bowed_ensemble"
        if cls == "cello":
            return "bowed_cello"
        return "bowed_viola" if program == 41 else "bowed_violin"
    if cls == "flute":
        return "wind_flute"
    if cls == "clarinet":
        return "wind_clarinet"
    if cls == "saxophone":
        return "wind_sax"
    if cls == "trumpet":
        return "brass_trumpet"
    if cls == "trombone":
        return "brass_trombone"
    if cls == "organ":
        return "organ_drawbar"
    if cls == "accordion":
        return "accordion_reeds"
    if cls == "synthesizer":
        return "synth_subtractive"
    if cls == "mallet_percussion":
        return "modal_mallet"
    if cls == "piano":
        return "ks_harpsichord" if program in (6, 7) else "piano_additive"
    if cls == "voice":
        return "voice_formant"
    if cls in ("drums", "cymbals"):
        return "drum_kit" if cls == "drums" else "drum_cymbal"
    raise KeyError(f"no synthesiser for class {cls}")


def _note_gain(y, sr, seconds, rms, peak=0.5):
    """Gain giving RMS `rms` over the first `seconds`, but a peak of at most `peak`."""
    m = max(1, min(len(y), int(seconds * sr)))
    level = np.sqrt(np.mean(y[:m] ** 2)) + 1e-9
    return min(rms / level, peak / (np.max(np.abs(y)) + 1e-9))


def render_part(part, sr, duration, rng, kit=None):
    """Render a music.Part with its class's synthesiser.

    Each note is rendered at its onset (note-on to note-off plus the
    synthesiser's release), loudness-normalised (RMS 0.1 over its first 0.3 s,
    0.25 over 0.05 s for drum hits, peak at most 0.5) and scaled by velocity^1.6 and the part volume
    (CC7: (volume/127)^2); part.detune (pitch-bend units, +-2 semitone range)
    shifts every pitch. Returns (audio float64 [round(duration * sr)], synth name):
    one name per part, "family_variant" (data.synth_match matches families by
    prefix); a drums part is "drum_kit" (cymbal hits included), a cymbals part
    "drum_cymbal"."""
    n_out = int(round(duration * sr))
    out = np.zeros(n_out)
    cls = part.cls
    name = choose_synth(cls, part.program, rng)
    if part.drum:
        voice = _draw_kit(name, rng, kit=kit)
        for nt in part.notes:
            a = int(round(nt.on * sr))
            y, _ = drum_hit(nt.pitch, nt.vel, sr, rng, voice, max_len=max(n_out - a, 1))
            y = y * _note_gain(y, sr, 0.05, 0.25) * _vel_amp(nt.vel)
            a = int(round(nt.on * sr))
            m = min(len(y), n_out - a)
            if m > 0:
                out[a:a + m] += y[:m]
        out = _part_filter(out, sr, {})[:n_out]
    else:
        voice = draw_voice(name, rng, part.program)
        shift = (part.detune or 0) / 8192.0 * 2.0
        note_fn = SYNTHS[name][1]
        for nt in part.notes:
            dur = max(nt.off - nt.on, 0.02)
            dur = min(dur, duration - nt.on + 0.05)
            y = note_fn(nt.pitch + shift, nt.vel, dur, sr, rng, voice)
            y = y * _note_gain(y, sr, 0.3, 0.1) * _vel_amp(nt.vel)
            a = int(round(nt.on * sr))
            m = min(len(y), n_out - a)
            if m > 0:
                out[a:a + m] += y[:m]
        out = _part_filter(out, sr, voice)[:n_out]
    out *= (part.volume / 127.0) ** 2
    return out, name
