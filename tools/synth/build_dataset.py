#!/usr/bin/python3
"""Generate, render, augment and featurise a synthetic instrument data set.

    /usr/bin/python3 tools/synth/build_dataset.py --font FluidR3_GM \
        --clips 600 --seed 1 --out build-default-model/data/train_fluid.npz

Clips are generated in batches (default 40 clips); each batch is one MIDI
file rendered by one fluidsynth call (so a soundfont is loaded once per batch,
which matters for the sf3 fonts), then cut back into clips. Output .npz:
  feats   float16 [total_frames, 64]  log-mel (tools/train/frontend.py)
  roll    uint8   [total_frames, 20]  per-frame class activity (from notes)
  offsets int64   [clips + 1]         clip boundaries in frames
  meta    str (JSON)                  per-clip description
With --save-wav DIR the clip waveforms are also written (16-bit WAV).

--font synth renders the same kind of clips with our own synthesisers
(physical.py: Karplus-Strong strings, bowed strings, winds, organ, drums, ...)
instead of fluidsynth: each part by its class's synthesiser from its notes,
parts summed, then the same augmentation. Only physical.SUPPORTED classes are
sampled (mandolin and ukulele included), without the MIDI-controller
performance layer (the synthesisers vary timbre themselves); meta records
each part's "synth".
"""
import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "train"))

import augment as aug  # noqa: E402
import music  # noqa: E402
import physical  # noqa: E402
import soundfont  # noqa: E402
from midi import MidiFile  # noqa: E402

SYNTH_SOURCE = "synth"  # --font value: our own synthesisers instead of a soundfont
FONTS = {
    "FluidR3_GM": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "MuseScore_General": "/usr/share/sounds/sf3/MuseScore_General.sf3",
    "TimGM6mb": "/usr/share/sounds/sf2/TimGM6mb.sf2",
}
GAP = 1.5  # seconds of silence between clips in a batch (release + tails)
MELODIC_CHANNELS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]


def clips_to_midi(clips):
    """Lay clips out one after another in one MIDI file. Returns (midi, starts)."""
    m = MidiFile()
    t = 0.5
    starts = []
    for ctx, parts in clips:
        for ch in range(16):
            m.all_off(t - 0.45, ch)
            m.control_change(t - 0.4, ch, 91, 0)  # reverb send
            m.control_change(t - 0.4, ch, 93, 0)  # chorus send
            m.control_change(t - 0.4, ch, 11, 127)
            m.control_change(t - 0.4, ch, 1, 0)
            m.sf2_generator_offset(t - 0.4, ch, music.GEN_FILTER_FC, 0)
            m.sf2_generator_offset(t - 0.4, ch, music.GEN_FILTER_Q, 0)
            m.pitch_bend(t - 0.4, ch, 0)
        free = list(MELODIC_CHANNELS)
        kit_set = False
        for p in parts:
            if p.drum:
                ch = 9
                if not kit_set:
                    m.program_change(t - 0.3, 9, p.kit)
                    m.control_change(t - 0.3, 9, 7, p.volume)
                    kit_set = True
            else:
                ch = free.pop(0)
                m.bank_select(t - 0.35, ch, getattr(p, "bank", 0))
                m.program_change(t - 0.3, ch, p.program)
                m.control_change(t - 0.3, ch, 7, p.volume)
                if p.detune:
                    m.pitch_bend(t - 0.3, ch, p.detune)
            for ev in getattr(p, "controls", ()):
                if ev[1] == "cc":
                    m.control_change(t + ev[0], ch, ev[2], ev[3])
                elif ev[1] == "bend":
                    m.pitch_bend(t + ev[0], ch, ev[2])
                elif ev[1] == "nrpn":
                    m.sf2_generator_offset(t + ev[0], ch, ev[2], ev[3])
            for n in p.notes:
                m.note(t + n.on, t + n.off, ch, n.pitch, n.vel)
        starts.append(t)
        t += ctx.duration + GAP
    for ch in range(16):
        m.all_off(t, ch)
    return m, starts, t + 0.5


def random_fx(rng, p_chorus=0.3, p_reverb=0.2):
    """fluidsynth chorus / reverb engine settings for one batch (one render).

    Off by default (reverb is our augmentation); with p_chorus the chorus
    engine runs (3-5 voices, 0.2-2 Hz, 2-12 ms depth, level 0.5-2.5), with
    p_reverb the reverb engine (room size 0.1-0.6, damping 0-0.8, level
    0.2-0.7). Parts feed them through their CC93 / CC91 sends
    (music.add_performance). Returns a dict of fluidsynth settings."""
    fx = {}
    if rng.random() < p_chorus:
        fx.update({"synth.chorus.nr": int(rng.integers(3, 6)),
                   "synth.chorus.speed": round(float(rng.uniform(0.2, 2.0)), 2),
                   "synth.chorus.depth": round(float(rng.uniform(2.0, 12.0)), 1),
                   "synth.chorus.level": round(float(rng.uniform(0.5, 2.5)), 2)})
    if rng.random() < p_reverb:
        fx.update({"synth.reverb.room-size": round(float(rng.uniform(0.1, 0.6)), 2),
                   "synth.reverb.damp": round(float(rng.uniform(0.0, 0.8)), 2),
                   "synth.reverb.width": round(float(rng.uniform(0.0, 100.0)), 1),
                   "synth.reverb.level": round(float(rng.uniform(0.2, 0.7)), 2)})
    return fx


def render(midi, font, sr, workdir, total, fx=None):
    """Render a MIDI file with fluidsynth; fx: settings from random_fx (engines
    whose settings are absent stay off)."""
    mid = os.path.join(workdir, "batch.mid")
    raw = os.path.join(workdir, "batch.raw")
    midi.write(mid)
    fx = fx or {}
    engines = ["-R", "1" if any(k.startswith("synth.reverb") for k in fx) else "0",
               "-C", "1" if any(k.startswith("synth.chorus") for k in fx) else "0"]
    for k, v in sorted(fx.items()):
        engines += ["-o", f"{k}={v}"]
    subprocess.run(["fluidsynth", "-ni", "-q"] + engines + ["-g", "0.4",
                    "-r", str(sr), "-T", "raw", "-O", "float", "-E", "little",
                    "-F", raw, FONTS[font], mid],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x = np.fromfile(raw, dtype="<f4").reshape(-1, 2).mean(axis=1).astype(np.float64)
    need = int(total * sr)
    if len(x) < need:
        x = np.concatenate([x, np.zeros(need - len(x))])
    return x


def render_synth(clips, sr, seed):
    """Render clips with physical.py: every part by its class's synthesiser
    (rng default_rng(seed + [clip, part]): same clips, same audio), parts summed.
    Like the fluidsynth path, clips lie GAP s apart and ring out into the gap
    (the speed change reads past the clip end). Returns (signal, clip starts in s)."""
    waves, starts, t = [], [], 0.0
    for i, (ctx, parts) in enumerate(clips):
        n = int(round((ctx.duration + GAP) * sr))
        y = np.zeros(n)
        for k, p in enumerate(parts):
            prng = np.random.default_rng(list(seed) + [i, k])
            a, p.synth = physical.render_part(p, sr, ctx.duration + GAP, prng,
                                              kit=getattr(p, "kit", None))
            y += a[:n]
        waves.append(y)
        starts.append(t)
        t += n / sr
    return np.concatenate(waves), starts


def write_wav(path, x, sr):
    pcm = (np.clip(x, -1, 1) * 32767).round().astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def build_batch(args):
    (batch_idx, n, opts) = args
    import torch
    torch.set_num_threads(1)
    import frontend
    sr = frontend.SAMPLE_RATE
    rng = np.random.default_rng([opts["seed"], batch_idx])
    arng = np.random.default_rng([opts["seed"], batch_idx, 1])
    synth = opts["font"] == SYNTH_SOURCE
    if synth:  # General MIDI programs only pick variants; no MIDI controllers, no fluidsynth fx
        presets, perform, fx = None, False, {}
        src = {"source": "synth", "classes": physical.SUPPORTED}
    else:
        presets = soundfont.presets(FONTS[opts["font"]])
        perform = opts.get("performance", True)
        fx = random_fx(np.random.default_rng([opts["seed"], batch_idx, 2]),
                       opts.get("p_chorus", 0.3), opts.get("p_reverb_engine", 0.2)) \
            if opts["augment"] else {}
        src = {}
    clips = []
    for i in range(n):
        dur = float(opts["clip_seconds"])
        if opts["solo"]:
            solo = opts["solo"]
            cls = solo[(batch_idx * n + i) % len(solo)]
            ctx, parts = music.make_clip(rng, dur, n_parts=1, force_class=cls, full_span=True,
                                         presets=presets, performance=perform, **src)
        else:
            ctx, parts = music.make_clip(rng, dur, presets=presets, performance=perform, **src)
        kits, kit_w = music.drum_kit_options(presets)
        for p in parts:
            if p.drum:
                p.kit = music.choose(rng, kits, kit_w)
        clips.append((ctx, parts))
    drum_kits = [next((p.kit for p in parts if p.drum), None) for _, parts in clips]
    for (ctx, parts), kit in zip(clips, drum_kits):
        for p in parts:
            if p.drum:
                p.kit = kit
    workdir = tempfile.mkdtemp(prefix="synth_")
    try:
        if synth:
            x, starts = render_synth(clips, sr, [opts["seed"], batch_idx, 3])
        else:
            midi, starts, total = clips_to_midi(clips)
            x = render(midi, opts["font"], sr, workdir, total, fx)
        waves, metas = [], []
        for (ctx, parts), s in zip(clips, starts):
            a = int(round(s * sr))
            n = int(round(ctx.duration * sr))
            y = x[a:a + n]
            desc = []
            ctx.speed = 1.0
            if opts["augment"] and arng.random() < opts.get("p_speed", 0.3):
                # pitch and tempo together; labels follow (roll times * speed)
                y, ctx.speed = aug.speed_change(x[a:a + int(n * 1.1) + 1], aug.random_speed(arng), n)
                desc.append(f"speed:{ctx.speed:.4f}")
            if opts["augment"]:
                y, d = aug.augment(y, arng, sr, p_noise=opts.get("p_noise", 0.35),
                                   p_colour=opts.get("p_colour", 0.3),
                                   p_compress=opts.get("p_compress", 0.3))
                desc += d
                y = aug.set_level(y, arng)
            else:
                y = aug.set_level(y, arng, -26.0, -18.0)
            waves.append(y)
            metas.append({
                "batch": batch_idx, "bpm": round(ctx.bpm, 1), "duration": ctx.duration,
                "parts": [{"class": p.cls, "program": p.program if not p.drum else None,
                           "bank": getattr(p, "bank", 0) if not p.drum else 128,
                           "kit": getattr(p, "kit", None) if p.drum else None,
                           "role": p.role, "notes": len(p.notes),
                           "perf": getattr(p, "perf", {}),
                           **({"synth": p.synth} if synth else {})} for p in parts],
                "fx": fx, "aug": desc})
        if opts["augment"]:
            picked = [i for i in range(len(waves)) if arng.random() < opts["p_codec"]]
            if picked:
                codec, quality = aug.random_codec(arng)
                gap = np.zeros(sr // 2)
                cat = np.concatenate([np.concatenate([waves[i], gap]) for i in picked])
                out = aug.codec_roundtrip(cat, sr, codec, quality, tmpdir=workdir)
                pos = 0
                for i in picked:
                    L = len(waves[i])
                    waves[i] = out[pos:pos + L]
                    pos += L + len(gap)
                    metas[i]["aug"].append(f"{codec}:{quality}")
        feats, rolls = [], []
        for (ctx, parts), y, meta in zip(clips, waves, metas):
            f = frontend.logmel(y.astype(np.float32)).numpy()
            t = frontend.frame_centers(f.shape[0])
            r = music.label_roll(parts, ctx.duration, t * getattr(ctx, "speed", 1.0))
            feats.append(f.astype(np.float16))
            rolls.append(r.astype(np.uint8))
            if opts["save_wav"]:
                k = len(os.listdir(opts["save_wav"]))
                name = f"b{batch_idx:04d}_{k:05d}.wav"
                write_wav(os.path.join(opts["save_wav"], name), y, sr)
                meta["wav"] = name
        return batch_idx, feats, rolls, metas
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--font", required=True, choices=sorted(FONTS) + [SYNTH_SOURCE],
                    help="soundfont to render with, or 'synth' for our own synthesisers")
    ap.add_argument("--clips", type=int, required=True)
    ap.add_argument("--clip-seconds", type=float, default=8.0)
    ap.add_argument("--batch-clips", type=int, default=40)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--p-codec", type=float, default=0.3)
    ap.add_argument("--solo", default="",
                    help="comma-separated classes: one-instrument clips, cycling through "
                         "them; 'all' = every class this source can render")
    ap.add_argument("--p-chorus", type=float, default=0.3,
                    help="probability per batch of fluidsynth's chorus engine (augment only)")
    ap.add_argument("--p-reverb-engine", type=float, default=0.2,
                    help="probability per batch of fluidsynth's reverb engine (augment only)")
    ap.add_argument("--p-speed", type=float, default=0.3,
                    help="probability per clip of a speed change (pitch + tempo, +-1 semitone)")
    ap.add_argument("--p-colour", type=float, default=0.3,
                    help="probability per clip of a mic / speaker / telephone colouration")
    ap.add_argument("--p-compress", type=float, default=0.3,
                    help="probability per clip of dynamic-range compression")
    ap.add_argument("--p-noise", type=float, default=0.35,
                    help="probability per clip of added noise (random type and SNR)")
    ap.add_argument("--no-performance", action="store_true",
                    help="no controller variation (music.add_performance)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--save-wav", default="")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.save_wav:
        os.makedirs(a.save_wav, exist_ok=True)
    opts = {"seed": a.seed, "font": a.font, "clip_seconds": a.clip_seconds,
            "augment": not a.no_augment, "p_codec": a.p_codec,
            "p_chorus": a.p_chorus, "p_reverb_engine": a.p_reverb_engine,
            "p_speed": a.p_speed, "p_colour": a.p_colour, "p_compress": a.p_compress,
            "p_noise": a.p_noise,
            "performance": not a.no_performance,
            "solo": [s for s in a.solo.split(",") if s], "save_wav": a.save_wav}
    if a.font == SYNTH_SOURCE:
        renderable = list(physical.SUPPORTED)
    else:
        renderable = [c for c in music.LABELS if c in music.PROGRAMS or c in ("drums", "cymbals")]
    if opts["solo"] == ["all"]:
        opts["solo"] = renderable
    for s in opts["solo"]:
        if s not in renderable:
            sys.exit(f"unsupported solo class {s} for --font {a.font}")
    jobs = []
    left, b = a.clips, 0
    while left > 0:
        n = min(a.batch_clips, left)
        jobs.append((b, n, opts))
        left -= n
        b += 1
    results = {}
    if a.jobs > 1:
        with multiprocessing.get_context("fork").Pool(a.jobs) as pool:
            for r in pool.imap_unordered(build_batch, jobs):
                results[r[0]] = r
                print(f"[{a.font} seed {a.seed}] batch {r[0] + 1}/{len(jobs)}", flush=True)
    else:
        for j in jobs:
            r = build_batch(j)
            results[r[0]] = r
            print(f"[{a.font} seed {a.seed}] batch {r[0] + 1}/{len(jobs)}", flush=True)
    feats, rolls, metas = [], [], []
    for b in sorted(results):
        feats += results[b][1]
        rolls += results[b][2]
        metas += results[b][3]
    offsets = np.cumsum([0] + [f.shape[0] for f in feats]).astype(np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    np.savez(a.out, feats=np.concatenate(feats), roll=np.concatenate(rolls),
             offsets=offsets, meta=np.array(json.dumps(metas)))
    secs = sum(m["duration"] for m in metas)
    print(f"wrote {a.out}: {len(metas)} clips, {secs / 60:.1f} min of audio")


if __name__ == "__main__":
    main()
