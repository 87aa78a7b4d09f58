#!/usr/bin/python3
"""Unit tests of tools/synth/physical.py and the synth source (plain unittest, seconds).

    OMP_NUM_THREADS=1 /usr/bin/python3 tools/synth/tests/test_physical.py
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SYNTH_DIR = os.path.join(HERE, "..")
sys.path.insert(0, SYNTH_DIR)
import music  # noqa: E402
import physical as ph  # noqa: E402

SR = 16000


def f0_autocorrelation(y, sr, f_expected):
    """f0 (Hz) from the highest autocorrelation peak with lag in [0.6, 1.5] x the
    expected period (unbiased autocorrelation via FFT, parabolic interpolation),
    and the normalised autocorrelation there (periodicity, 1 = periodic)."""
    y = y - y.mean()
    n = len(y)
    n_fft = 1 << int(np.ceil(np.log2(2 * n)))
    r = np.fft.irfft(np.abs(np.fft.rfft(y, n_fft)) ** 2, n_fft)[:n] / np.arange(n, 0, -1)
    P = sr / f_expected
    lo, hi = int(0.6 * P), int(np.ceil(1.5 * P))
    i = lo + int(np.argmax(r[lo:hi]))
    a, b, c = r[i - 1], r[i], r[i + 1]
    return sr / (i + 0.5 * (a - c) / (a - 2 * b + c)), b / r[0]


class Notes(unittest.TestCase):
    def test_every_synth_finite_and_long_enough(self):
        for name in ph.SYNTHS:
            for pitch, dur in ((62, 0.5), (69, 1.2)):
                y = ph.note_with_body(name, pitch, 100, dur, SR, np.random.default_rng(1))
                self.assertTrue(np.all(np.isfinite(y)), name)
                self.assertGreater(np.max(np.abs(y)), 1e-4, name)
                # sustained voices cover the note plus a release; plucked / struck
                # ones may stop once decayed, but never run past the note + 1 s
                self.assertLessEqual(len(y), int((dur + 1.0) * SR), name)
                if not name.startswith(("ks_", "modal_", "piano_")):
                    self.assertGreaterEqual(len(y), int(dur * SR), name)
                else:
                    self.assertGreaterEqual(len(y), int(min(dur, 0.3) * SR), name)

    def test_every_drum_note(self):
        voice = ph.draw_voice("drum_kit", np.random.default_rng(2))
        notes = music.KICKS + music.SNARES + list(music.HATS.values()) + music.TOMS \
            + music.CYMBALS + music.OTHER_PERC + [60, 61, 62, 63, 64]
        for note in notes:
            y, cls = ph.drum_hit(note, 100, SR, np.random.default_rng(note), voice)
            self.assertTrue(np.all(np.isfinite(y)) and len(y) > 0.05 * SR, note)
            self.assertEqual(cls, "cymbals" if note in music.CYMBALS else "drums", note)

    def test_pitch_plucked_and_bowed(self):
        cases = [("ks_guitar_steel", 45), ("ks_guitar_nylon", 64), ("ks_banjo", 67),
                 ("ks_bass_electric", 33), ("ks_mandolin", 76), ("ks_ukulele", 69),
                 ("bowed_violin", 74), ("bowed_cello", 43), ("brass_trumpet", 67),
                 ("wind_clarinet", 58), ("piano_additive", 60)]
        for name, pitch in cases:
            y = ph.note_with_body(name, pitch, 100, 1.0, SR, np.random.default_rng(pitch))
            f, periodicity = f0_autocorrelation(y[int(0.15 * SR):int(0.65 * SR)], SR,
                                                ph.midi_hz(pitch))
            self.assertLess(abs(f / ph.midi_hz(pitch) - 1.0), 0.01, (name, f))
            self.assertGreater(periodicity, 0.5, name)

    def test_deterministic(self):
        for name in ("ks_guitar_steel", "bowed_cello", "synth_subtractive", "wind_flute"):
            a = ph.note_with_body(name, 60, 90, 0.4, SR, np.random.default_rng(7))
            b = ph.note_with_body(name, 60, 90, 0.4, SR, np.random.default_rng(7))
            c = ph.note_with_body(name, 60, 90, 0.4, SR, np.random.default_rng(8))
            np.testing.assert_array_equal(a, b)
            self.assertFalse(np.array_equal(a[:len(c)], c[:len(a)]), name)

    def test_mandolin_paired_courses(self):
        """Two strings per note, detuned by d cents: two spectral peaks d cents
        apart around the fundamental (a long T60 so they are resolvable)."""
        rng = np.random.default_rng(3)
        v = ph.draw_voice("ks_mandolin", rng)
        v.update(t60=6.0, t60_slope=0.0, course_cents=[-6.0, 6.0])
        f0 = float(ph.midi_hz(81))
        y = ph.render_note("ks_mandolin", 81, 100, 3.0, SR, rng, v)[:3 * SR]
        n_fft = 1 << 20
        Y = np.abs(np.fft.rfft(y * np.hanning(len(y)), n_fft))
        f = np.fft.rfftfreq(n_fft, 1.0 / SR)
        band = (f > f0 * 0.98) & (f < f0 * 1.02)
        fb, yb = f[band], Y[band]
        peaks = [i for i in range(1, len(yb) - 1)
                 if yb[i] > yb[i - 1] and yb[i] >= yb[i + 1] and yb[i] > 0.3 * yb.max()]
        self.assertGreaterEqual(len(peaks), 2)
        top2 = sorted(sorted(peaks, key=lambda i: yb[i])[-2:])
        sep = 1200 * np.log2(fb[top2[1]] / fb[top2[0]])
        self.assertAlmostEqual(sep, 12.0, delta=3.0)
        # the single-course control has one peak
        v.update(course_cents=[0.0])
        y1 = ph.render_note("ks_mandolin", 81, 100, 3.0, SR, rng, v)[:3 * SR]
        Y1 = np.abs(np.fft.rfft(y1 * np.hanning(len(y1)), n_fft))[band]
        p1 = [i for i in range(1, len(Y1) - 1)
              if Y1[i] > Y1[i - 1] and Y1[i] >= Y1[i + 1] and Y1[i] > 0.3 * Y1.max()]
        self.assertEqual(len(p1), 1)

    def test_mandolin_tremolo_and_ukulele_voicing(self):
        rng = np.random.default_rng(5)
        ctx = music.Context(rng, 6.0)
        part = music.make_part("mandolin", ctx, rng, role="tremolo")
        self.assertTrue(all(55 <= n.pitch <= 88 for n in part.notes))
        ons = sorted(n.on for n in part.notes)
        gaps = np.diff(ons)
        # repeated plucks 1/16 .. 1/8 s apart (plus timing jitter)
        self.assertGreater(np.mean((gaps > 0.05) & (gaps < 0.14)), 0.5)
        for seed in range(20):
            r = np.random.default_rng(seed)
            ctx = music.Context(r, 4.0)
            uke = music.ukulele_voicing(ctx, int(r.integers(7)), bool(r.random() < 0.3))
            self.assertEqual(len(uke), 4)
            self.assertTrue(all(60 <= p <= 81 for p in uke))
            self.assertGreater(uke[0], uke[1])  # re-entrant: the G string is above C

    def test_classes(self):
        families = {"ks", "bowed", "wind", "brass", "organ", "accordion", "synth", "modal",
                    "piano", "voice", "drum"}
        for c in ph.SUPPORTED:
            ph.choose_synth(c, None, np.random.default_rng(0))
        # names are family_variant (train.py --exclude-synth matches families by prefix)
        for name in list(ph.SYNTHS) + list(ph.DRUM_SYNTHS):
            self.assertIn(name.split("_")[0], families, name)
        seen_sf, seen_syn = set(), set()
        rng = np.random.default_rng(11)
        for _ in range(150):
            seen_sf |= {p.cls for p in music.make_clip(rng, 3.0)[1]}
            seen_syn |= {p.cls for p in music.make_clip(rng, 3.0, source="synth",
                                                        classes=ph.SUPPORTED)[1]}
        self.assertFalse(seen_sf & {"mandolin", "ukulele"})
        self.assertTrue({"mandolin", "ukulele"} <= seen_syn)

    def test_render_part_level(self):
        rng = np.random.default_rng(9)
        for cls in ("guitar", "drums", "cymbals", "violin", "mandolin", "piano"):
            ctx = music.Context(rng, 3.0)
            part = music.make_part(cls, ctx, rng)
            part.kit = 0 if part.drum else None
            y, name = ph.render_part(part, SR, 3.0, rng, kit=part.kit)
            self.assertEqual(len(y), 3 * SR)
            self.assertTrue(np.all(np.isfinite(y)), cls)
            if part.notes:
                self.assertLess(np.max(np.abs(y)), 1.0, cls)
                self.assertGreater(np.max(np.abs(y)), 1e-3, cls)


class SynthSource(unittest.TestCase):
    def test_build_dataset_synth(self):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "s.npz")
            subprocess.run([sys.executable, os.path.join(SYNTH_DIR, "build_dataset.py"),
                            "--font", "synth", "--clips", "3", "--clip-seconds", "2",
                            "--seed", "4", "--out", out, "--p-codec", "0"],
                           check=True, stdout=subprocess.DEVNULL)
            z = np.load(out)
            meta = json.loads(str(z["meta"]))
            self.assertEqual(len(meta), 3)
            self.assertEqual(z["roll"].shape[1], 20)
            self.assertTrue(np.all(np.isfinite(z["feats"].astype(np.float32))))
            for m in meta:
                for p in m["parts"]:
                    self.assertIn("synth", p)


if __name__ == "__main__":
    unittest.main()
