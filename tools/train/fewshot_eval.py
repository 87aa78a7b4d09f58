#!/usr/bin/python3
"""N-way K-shot evaluation of `audiotag fewshot` on instruments the default
student never saw (docs/models.md, "Few-shot tags on new instruments").

    /usr/bin/python3 tools/train/fewshot_eval.py --build build \
        [--shots 1,3,5] [--trials 3] [--clips 10] [--work /tmp/fewshot-eval] \
        [--backbone-dir models/openmic_student] [--embedding embedding]

For each General MIDI program below (none of them is in the student's
training data, tools/synth/README.md), renders --clips short solo melodies
with FluidR3_GM (the support pool) and --clips others with MuseScore_General
(the queries): other seeds, other notes, another soundfont. Then, through
the real audiotag-server serving a copy of models/openmic_student with
polling on, for each K and trial: draws K support clips per program,
`audiotag fewshot create` publishes a head, the server hot-loads it, and
`audiotag analyze` tags every query. Reports top-1 accuracy (the top tag is
the query's program) and mAP (per tag, average precision of the queries
ranked by its score; mean over tags), mean over trials.

Only the two permitted training soundfonts are used; nothing is downloaded.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import wave

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "synth"))
import midi  # noqa: E402

# name: (GM program, 0-based; lowest and highest MIDI note of the melodies)
PROGRAMS = {
    "harp": (46, 48, 84),
    "sitar": (104, 52, 76),
    "shamisen": (106, 55, 79),
    "koto": (107, 55, 79),
    "kalimba": (108, 60, 84),
    "bagpipe": (109, 60, 77),
    "steel_drums": (114, 60, 84),
    "ocarina": (79, 67, 91),
}
FONTS = {
    "support": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "query": "/usr/share/sounds/sf3/MuseScore_General.sf3",
}
SR = 16000
SECONDS = 4.0


GAP = 1.0  # seconds of silence between clips in one rendering


def add_melody(m, rng, start, program, low, high):
    """One solo melody of SECONDS on channel 0, starting at `start`."""
    m.program_change(start, 0, program)
    t, pitch = 0.0, int(rng.integers(low, high + 1))
    while t < SECONDS - 0.3:
        dur = float(rng.choice([0.2, 0.3, 0.4, 0.6]))
        pitch = int(np.clip(pitch + rng.integers(-4, 5), low, high))
        m.note(start + t, start + t + dur * 0.95, 0, pitch,
               int(rng.integers(70, 115)))
        t += dur
    m.all_off(start + SECONDS, 0)


def write_wav(path, x):
    pcm = (np.clip(x, -1, 1) * 32767).round().astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def make_audio(work, clips):
    """Renders every clip of a split in one fluidsynth call (loading a
    soundfont, MuseScore_General's compressed samples above all, takes far
    longer than rendering) and cuts it into one WAV per clip."""
    files = {"support": {}, "query": {}}
    for split, font in FONTS.items():
        m = midi.MidiFile()
        slots = []
        for name, (program, low, high) in PROGRAMS.items():
            rng = np.random.default_rng([1 if split == "support" else 2,
                                         program])
            files[split][name] = []
            for i in range(clips):
                start = len(slots) * (SECONDS + GAP)
                add_melody(m, rng, start, program, low, high)
                path = os.path.join(work, f"{split}_{name}_{i}.wav")
                slots.append((start, path))
                files[split][name].append(path)
        if all(os.path.exists(p) for _, p in slots):
            continue
        mid, raw = (os.path.join(work, f"{split}.{e}") for e in ("mid", "raw"))
        m.write(mid)
        subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g",
                        "0.5", "-r", str(SR), "-T", "raw", "-O", "float",
                        "-E", "little", "-F", raw, font, mid], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        x = np.fromfile(raw, dtype="<f4").reshape(-1, 2).mean(axis=1)
        for start, path in slots:
            a = int(start * SR)
            clip = x[a:a + int(SECONDS * SR)]
            write_wav(path, np.pad(clip, (0, int(SECONDS * SR) - len(clip))))
        os.remove(raw)
    return files


def average_precision(scores, relevant):
    order = np.argsort(-scores, kind="stable")
    rel = relevant[order]
    hits = np.cumsum(rel)
    return float(np.sum(hits[rel] / (np.nonzero(rel)[0] + 1)) / rel.sum())


def wait_ready(cli, server, name):
    for _ in range(600):
        r = subprocess.run([cli, "model", name, f"--server={server}"],
                           capture_output=True, text=True)
        if r.returncode == 0 and '"READY"' in r.stdout:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} never became READY")


def run_trial(cli, server, repo, files, k, trial, backbone, embedding):
    rng = np.random.default_rng([k, trial])
    name = f"fewshot_k{k}_t{trial}"
    args = [cli, "fewshot", "create", f"--server={server}",
            "--backbone", backbone, "--embedding", embedding,
            "--out", os.path.join(repo, name)]
    for tag, paths in files["support"].items():
        chosen = rng.choice(len(paths), size=k, replace=False)
        args += ["--tag", tag + "=" + ",".join(paths[i] for i in chosen)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wait_ready(cli, server, name)
    tags = list(files["query"])
    queries = [(t, p) for t in tags for p in files["query"][t]]
    out = subprocess.run(
        [cli, "analyze", f"--server={server}", f"--models={name}",
         "--outputs=tags", "--top_k=-1"] + [p for _, p in queries],
        check=True, capture_output=True, text=True).stdout
    scores = np.zeros((len(queries), len(tags)))
    for row, line in enumerate(l for l in out.splitlines() if l.strip()):
        reply = json.loads(line)
        for tag in reply["results"][0]["outputs"][0]["tags"]:
            scores[row, tags.index(tag["label"])] = tag.get("score", 0.0)
    truth = np.array([tags.index(t) for t, _ in queries])
    accuracy = float(np.mean(scores.argmax(axis=1) == truth))
    ap = [average_precision(scores[:, j], truth == j) for j in range(len(tags))]
    shutil.rmtree(os.path.join(repo, name))
    return accuracy, float(np.mean(ap))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--shots", default="1,3,5")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--work", default="/tmp/fewshot-eval")
    parser.add_argument("--backbone-dir",
                        default=os.path.join(ROOT, "models", "openmic_student"),
                        help="an exported model folder to serve as backbone")
    parser.add_argument("--embedding", default="embedding",
                        help="the backbone's EMBEDDING output")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    files = make_audio(args.work, args.clips)

    repo = os.path.join(args.work, "models")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    backbone = os.path.basename(os.path.normpath(args.backbone_dir))
    shutil.copytree(args.backbone_dir, os.path.join(repo, backbone))
    port_file = os.path.join(args.work, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    server = subprocess.Popen(
        [os.path.join(args.build, "bin", "audiotag-server"),
         f"--model_repository={repo}", "--port=0", f"--port_file={port_file}",
         "--metrics_port=0", "--poll_interval_seconds=0.5"],
        stderr=subprocess.DEVNULL)
    try:
        while not (os.path.exists(port_file) and
                   open(port_file).read().endswith("\n")):
            time.sleep(0.1)
        address = "127.0.0.1:" + open(port_file).read().strip()
        cli = os.path.join(args.build, "bin", "audiotag")
        print(f"backbone {backbone}/{args.embedding}; "
              f"{len(PROGRAMS)}-way, support {args.clips} clips per program "
              f"(FluidR3_GM), queries {args.clips} per program "
              f"(MuseScore_General), {SECONDS:.0f} s each")
        print("| K | top-1 accuracy | mAP |\n|---|---|---|")
        for k in [int(s) for s in args.shots.split(",")]:
            results = [run_trial(cli, address, repo, files, k, t, backbone,
                                 args.embedding)
                       for t in range(args.trials)]
            acc, m = np.mean(results, axis=0)
            print(f"| {k} | {acc:.3f} | {m:.3f} |", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()


if __name__ == "__main__":
    main()
