#!/usr/bin/python3
"""End-to-end test of the default model (models/openmic_student) as shipped.

Renders three fresh pieces with tools/synth's generator through FluidR3_GM
(a training soundfont, but new material: these seeds were never used to
build any data set), encodes them with the ffmpeg CLI, serves the REAL
default repository models/ with the real audiotag-server and analyses each
file with the real `audiotag analyze` CLI. Checks that the right instrument
ranks first among the clip tags:

  piano piece (GM 0 acoustic grand, two hands)        -> piano
  drum loop (standard kit: kick, snare, closed hi-hat) -> drums
  violin passage (GM 40 violin, melody)                -> violin (or cello)

Seeds (numpy default_rng): piano 7301, drums 7302, violin 7303 (training
used 1 and 2, evaluation 101-106). 8 s each, 16 kHz.

    /usr/bin/python3 tools/train/tests/test_default_model_e2e.py --build-dir build-lead
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serving import ROOT, Server, output, result_for  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools", "synth"))
sys.path.insert(0, os.path.join(ROOT, "tools", "train"))
import build_dataset  # noqa: E402
import music  # noqa: E402

SR = 16000
SECONDS = 8.0
SEEDS = {"piano": 7301, "drums": 7302, "violin": 7303}
STRINGS = {"violin", "cello"}


def piano_clip():
    rng = np.random.default_rng(SEEDS["piano"])
    ctx = music.Context(rng, SECONDS)
    ctx.full_span = True
    part = music.make_part("piano", ctx, rng, role="piece", performance=False)
    part.program = 0  # acoustic grand
    return ctx, [part]


def drum_clip():
    """A plain rock loop: kick on 1 and 3, snare on 2 and 4, closed hi-hat
    eighths, a little velocity and timing variation. No cymbals."""
    rng = np.random.default_rng(SEEDS["drums"])
    ctx = music.Context(rng, SECONDS)
    ctx.full_span = True
    ctx.bpm, ctx.beat, ctx.beats_per_bar, ctx.swing = 100.0, 0.6, 4, 0.0
    part = music.Part("drums", None, True, "drums", 110, 0)
    part.kit = 0  # standard kit
    d = music.IDX["drums"]
    t, step = 0.0, ctx.beat / 2
    i = 0
    while t < SECONDS - 0.1:
        beat, half = divmod(i, 2)
        hits = [(42, 80)]  # closed hi-hat every eighth
        if half == 0 and beat % 2 == 0:
            hits.append((36, 110))  # kick
        if half == 0 and beat % 2 == 1:
            hits.append((38, 105))  # snare
        if half == 1 and beat % 4 == 3:
            hits.append((36, 90))
        for pitch, vel in hits:
            on = max(0.0, t + rng.normal(0, 0.004))
            v = int(np.clip(vel + rng.normal(0, 6), 1, 127))
            part.notes.append(music.Note(on, on + 0.1, pitch, v, d, min(on + 0.3, SECONDS)))
        t += step
        i += 1
    assert not any(n.pitch in music.CYMBALS for n in part.notes)
    return ctx, [part]


def violin_clip():
    rng = np.random.default_rng(SEEDS["violin"])
    ctx = music.Context(rng, SECONDS)
    ctx.full_span = True
    part = music.make_part("violin", ctx, rng, role="melody", performance=False)
    part.program = 40  # violin
    part.notes = [n for n in part.notes if n.pitch >= 55]
    return ctx, [part]


def render_all(tmp):
    clips = {"piano": piano_clip(), "drums": drum_clip(), "violin": violin_clip()}
    names = list(clips)
    midi, starts, total = build_dataset.clips_to_midi([clips[n] for n in names])
    x = build_dataset.render(midi, "FluidR3_GM", SR, tmp, total)
    files = {}
    codecs = {"piano": ("mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
              "drums": ("ogg", ["-c:a", "libvorbis", "-q:a", "4"]),
              "violin": ("mp3", ["-c:a", "libmp3lame", "-b:a", "96k"])}
    for name, s in zip(names, starts):
        a = int(round(s * SR))
        y = x[a:a + int(SECONDS * SR)]
        rms = np.sqrt(np.mean(y ** 2)) + 1e-12
        y = y * (10 ** (-20 / 20) / rms)  # -20 dBFS RMS
        y = y * min(1.0, 0.98 / (np.abs(y).max() + 1e-12))
        wav = os.path.join(tmp, name + ".wav")
        build_dataset.write_wav(wav, y, SR)
        ext, args = codecs[name]
        out = os.path.join(tmp, f"{name}.{ext}")
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", wav, *args, out],
                       check=True)
        files[name] = out
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--repo", default=os.path.join(ROOT, "models"))
    a = ap.parse_args()
    t0 = time.time()
    failures = []
    with tempfile.TemporaryDirectory(prefix="default_model_e2e_") as tmp:
        files = render_all(tmp)
        print(f"rendered and encoded in {time.time() - t0:.1f} s", flush=True)
        with Server(a.build_dir, a.repo, ready_models=["openmic_student"]) as srv:
            for name, path in files.items():
                resp = srv.analyze(path, models=["openmic_student"], outputs="tags,activations")
                res = result_for(resp, "openmic_student")
                tags = output(res, "tags")["tags"]
                ranked = sorted(tags, key=lambda t: -t["score"])
                top = ranked[0]["label"]
                top3 = ", ".join(f"{t['label']} {t['score']:.3f}" for t in ranked[:3])
                ok = top == name or (name == "violin" and top in STRINGS)
                if name == "drums":
                    cym = next(t["score"] for t in tags if t["label"] == "cymbals")
                    top3 += f" (cymbals {cym:.3f})"
                print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(path)}: "
                      f"{res['num_segments']} segments, top: {top3}", flush=True)
                if not ok:
                    failures.append(f"{name}: top-1 is {top}")
    print(f"runtime {time.time() - t0:.1f} s")
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
