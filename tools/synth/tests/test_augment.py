#!/usr/bin/python3
"""Fast checks (seconds) of tools/synth: the augmentations (augment.py) and
the instrument tables and performance controllers (music.py).

    /usr/bin/python3 tools/synth/tests/test_augment.py

- every augmentation keeps the length, stays finite and inside peak bounds;
- compression lowers the crest factor (peak / RMS);
- the speed change keeps labels aligned: the onsets of an impulse train
  played faster or slower land on the frames where the rescaled label roll
  (music.label_roll at frame times * factor) switches on;
- everything is deterministic given the seed;
- every class's programs are in 0-127, banks in 0-127, and sampling many
  parts uses every listed program (and variation preset the font has, and no
  preset it lacks) for each permitted font.
Needs numpy and the ffmpeg CLI (codec round trips); the soundfonts only for
their preset lists (checks of a missing font are skipped).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import augment as aug  # noqa: E402
import music  # noqa: E402
import soundfont  # noqa: E402

SR = 16000
FONTS = {
    "FluidR3_GM": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "MuseScore_General": "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "TimGM6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}


def tone_bursts(seconds=3.0, seed=0):
    """Decaying 440 Hz tone bursts of random levels every 0.25 s, peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = np.repeat(rng.uniform(0.05, 1.0, int(seconds * 4) + 1), SR // 4)[:len(t)]
    x = np.sin(2 * np.pi * 440 * t) * env * np.exp(-8 * (t % 0.25))
    return 0.5 * x / np.max(np.abs(x))


def crest(x):
    return float(np.max(np.abs(x)) / np.sqrt(np.mean(x ** 2)))


def check_bounds(name, x, y, max_peak=4.0):
    assert len(y) == len(x), (name, len(y), len(x))
    assert np.all(np.isfinite(y)), name
    peak = float(np.max(np.abs(y)))
    assert 1e-4 < peak < max_peak, (name, peak)


def test_each_augmentation_bounds():
    x = tone_bursts()
    rng = np.random.default_rng(1)
    y, _ = aug.speed_change(np.concatenate([x, np.zeros(SR)]), 1.059, len(x))
    check_bounds("speed up", x, y)
    y, _ = aug.speed_change(x, 0.944, len(x))
    check_bounds("slow down", x, y)
    f = np.fft.rfftfreq(len(x), 1.0 / SR)
    for kind in ("mic", "speaker", "telephone"):
        for _ in range(5):
            db, desc = aug.colouration(rng, f, kind)
            assert np.all(np.isfinite(db)) and db.max() < 20, (kind, db.max())
            y = np.fft.irfft(np.fft.rfft(x) * 10 ** (db / 20), len(x))
            check_bounds(desc, x, y)
    for _ in range(5):
        y, desc = aug.random_compress(x, SR, rng)
        check_bounds(desc, x, y, max_peak=0.5 + 1e-9)  # a compressor never adds gain
    for kind in aug.NOISE_TYPES:
        nz = aug.make_noise(rng, len(x), SR, kind)
        assert abs(np.sqrt(np.mean(nz ** 2)) - 1.0) < 1e-6 and np.all(np.isfinite(nz)), kind
    for _ in range(10):  # everything on
        y, desc = aug.augment(x, rng, SR, 1.0, 1.0, 1.0, 1.0, 1.0)
        check_bounds(",".join(desc), x, y)
        z = aug.set_level(y, rng)
        assert np.max(np.abs(z)) <= 0.99 + 1e-9
    for codec in aug.CODECS:
        q = aug.CODEC_CHOICES[codec][1][0]  # lowest quality
        y = aug.codec_roundtrip(x[:SR], SR, codec, q)
        check_bounds(codec, x[:SR], y, max_peak=1.0)
        c = float(np.corrcoef(x[:SR], y)[0, 1])
        assert c > 0.9, (codec, q, c)  # aligned and still the same signal


def test_compression_lowers_crest_factor():
    x = tone_bursts(seed=3)
    for attack, release in ((0.5, 50), (2, 100), (10, 400)):
        y = aug.compress(x, SR, -20.0, 4.0, attack, release)
        assert crest(y) < crest(x) - 0.2, (attack, release, crest(x), crest(y))
    rng = np.random.default_rng(4)
    lower = sum(crest(aug.random_compress(x, SR, rng)[0]) < crest(x) for _ in range(20))
    assert lower >= 18, lower


def test_speed_change_keeps_labels_aligned():
    """Impulse train -> speed change -> detected onsets vs the label roll
    rescaled by the exact factor (as build_dataset does)."""
    seconds = 6.0
    n = int(seconds * SR)
    onsets = np.arange(0.2, seconds + 0.5, 0.37)
    src = np.zeros(n + SR)
    src[(onsets * SR).round().astype(int)] = 1.0
    hop = 0.01
    frame_times = (np.arange(int(seconds / hop)) + 0.5) * hop
    for factor in (2 ** (-1 / 12), 0.97, 1.0, 1.03, 2 ** (1 / 12)):
        y, exact = aug.speed_change(src, factor, n)
        assert abs(exact - factor) < 1e-3
        # onsets heard in the output: local maxima well above the ringing
        env = np.abs(y)
        idx = [i for i in np.flatnonzero(env > 0.5 * env.max())
               if env[i] == env[max(i - 40, 0):i + 40].max()]
        heard = np.array(idx) / SR
        expected = onsets[onsets / exact < seconds - 0.01] / exact
        assert len(heard) == len(expected), (factor, len(heard), len(expected))
        assert np.max(np.abs(heard - expected)) < 1.5 / SR, factor
        # label roll of notes at the source onsets, at rescaled frame times
        part = music.Part("drums", None, True, "drums", 100, 0)
        part.notes = [music.Note(t, t + 0.05, 36, 100, music.IDX["drums"], t + 0.05)
                      for t in onsets]
        roll = music.label_roll([part], seconds, frame_times * exact)[:, music.IDX["drums"]]
        starts = np.flatnonzero(np.diff(np.concatenate([[0], roll.astype(int)])) == 1)
        # the frame that switches on is the first whose (rescaled) centre is
        # past the onset: its centre is within one hop after the heard onset
        d = frame_times[starts] - heard[:len(starts)]
        assert len(starts) == len(heard) and np.all(d >= 0) and np.all(d < hop + 1e-9), factor


def test_deterministic():
    x = tone_bursts(seed=5)
    a = aug.augment(x, np.random.default_rng(9), SR, 1, 1, 1, 1, 1)
    b = aug.augment(x, np.random.default_rng(9), SR, 1, 1, 1, 1, 1)
    assert a[1] == b[1] and np.array_equal(a[0], b[0])
    c = aug.augment(x, np.random.default_rng(10), SR, 1, 1, 1, 1, 1)
    assert not np.array_equal(a[0], c[0])
    presets = soundfont.presets(FONTS["FluidR3_GM"]) if os.path.exists(FONTS["FluidR3_GM"]) else None

    def clip(seed):
        ctx, parts = music.make_clip(np.random.default_rng(seed), 6.0, presets=presets)
        return [(p.cls, p.bank, p.program, [(n.on, n.pitch, n.vel) for n in p.notes],
                 p.controls, p.perf) for p in parts]
    assert clip(11) == clip(11)
    assert clip(11) != clip(12)


def test_programs_and_coverage():
    for cls, opts in music.PROGRAMS.items():
        assert cls in music.IDX and cls not in music.UNSUPPORTED
        for prog, w, (lo, hi) in opts:
            assert 0 <= prog <= 127 and w > 0 and 0 <= lo < hi <= 127, (cls, prog)
    for cls, opts in music.VARIATIONS.items():
        for bank, prog, w, (lo, hi), label in opts:
            assert 0 < bank < 128 and 0 <= prog <= 127 and w > 0 and lo < hi, (cls, bank, prog)
            assert label in (None, "register") or label in music.IDX
    for prog, w in music.STRING_ENSEMBLE:
        assert 0 <= prog <= 127
    fonts = {name: soundfont.presets(path) for name, path in FONTS.items() if os.path.exists(path)}
    fonts["none (General MIDI)"] = None
    for font, presets in fonts.items():
        for cls in music.PROGRAMS:
            want = {(o[0], o[1]) for o in music.program_options(cls, presets)}
            if cls in ("violin", "cello"):
                want |= {(0, p) for p, _ in music.STRING_ENSEMBLE}
            if presets is not None:
                assert want <= presets, (font, cls, want - presets)
            got = set()
            rng = np.random.default_rng([7, music.IDX[cls]])
            ctx = music.Context(rng, 1.0)
            for _ in range(60 * len(want)):
                part = music.make_part(cls, ctx, rng, role=music.ROLES[cls][0][0],
                                       presets=presets, performance=False)
                got.add((part.bank, part.program))
                for nt in part.notes:
                    assert music.LABELS[nt.label] not in music.UNSUPPORTED
                    if part.program == 43 and part.bank == 0:
                        assert music.LABELS[nt.label] == "cello"
                if got == want:
                    break
            assert got == want, (font, cls, want - got, got - want)
        kits, _ = music.drum_kit_options(presets)
        if presets is not None:
            assert {(128, k) for k in kits} <= presets, font
    # TimGM6mb has no variation banks: only bank 0 is ever used
    if "TimGM6mb" in fonts:
        assert all(o[0] == 0 for c in music.PROGRAMS
                   for o in music.program_options(c, fonts["TimGM6mb"]))


def test_performance_controllers():
    rng = np.random.default_rng(21)
    kinds, velocities = set(), []
    for i in range(60):
        ctx, parts = music.make_clip(rng, 4.0)
        for p in parts:
            velocities += [n.vel for n in p.notes]
            for ev in p.controls:
                assert 0.0 <= ev[0] <= ctx.duration + 1e-9, ev
                kinds.add(ev[1] if ev[1] != "cc" else f"cc{ev[2]}")
                if ev[1] == "cc":
                    assert 0 <= ev[3] <= 127
                elif ev[1] == "bend":
                    assert -8192 <= ev[2] <= 8191
                else:
                    assert ev[2] in (music.GEN_FILTER_FC, music.GEN_FILTER_Q)
                    assert -8192 <= ev[3] <= 8191
    assert {"cc1", "cc11", "cc91", "cc93", "bend", "nrpn"} <= kinds, kinds
    assert min(velocities) >= 36 and max(velocities) <= 127


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        t()
        print(f"ok {t.__name__}", flush=True)
    print(f"PASS ({len(tests)} tests)")


if __name__ == "__main__":
    main()
