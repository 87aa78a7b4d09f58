#!/usr/bin/python3
"""End-to-end test of the teacher-to-student loop and of reprogramming, on a
few synthesized clips, through the real audiotag-server and CLI.

 1. render 6 clips of 4 s (FluidR3_GM, seed 7401, no augmentation) with
    tools/synth/build_dataset.py --save-wav;
 2. write a small random-weight "teacher" model folder (a CNN on its own
    40-band log-mel, 1.5 s segments with a 0.75 s hop, so its segments do
    not line up with the student's 1 s / 0.5 s: the trainer pools them), serve
    it and extract per-segment embeddings of the clips with
    `audiotag bulk --embeddings=segments`;
 3. train a student for a few steps with --teacher-embeddings and
    --teacher-weight 0.5 (distance-correlation regulariser) and export it with
    tools/train/export.py;
 4. reprogram the frozen exported student: tools/train/reprogram.py trains
    the input transform + output mapping for a few steps and writes the three
    pipeline folders rp_transform -> rp_backbone -> rp_head;
 5. serve student + pipeline in one real server: the student answers with
    tags, activations and embedding (equal to its TorchScript module on the
    same audio), and the head's per-segment activations equal the Python
    computation transform -> backbone -> head on the same audio.

Tolerances (server front-end float32 C++, reference float64 torch front-end):
probabilities 2e-4 abs, embeddings 1e-3 + 1e-4 * max|ref| abs.

    /usr/bin/python3 tools/train/tests/test_teacher_student_loop.py --build-dir build-lead
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serving import ROOT, Server, output, result_for  # noqa: E402

TRAIN = os.path.join(ROOT, "tools", "train")
sys.path.insert(0, TRAIN)
import frontend  # noqa: E402

PY = sys.executable
PROB_TOL = 2e-4
SEED = 7401

TEACHER_CONFIG = """\
name: "teacher"
description: "test teacher: random-weight CNN, 40 mels, 1.5 s segments"
platform: "torchscript"
input {
  sample_rate: 16000
  log_mel {
    n_fft: 400
    win_length: 400
    hop_length: 160
    window: WINDOW_HANN_PERIODIC
    center: false
    n_mels: 40
    f_min: 50
    f_max: 8000
    mel_scale: MEL_HTK
    power: 2
    log: LOG_NATURAL
    log_offset: 1e-06
  }
  layout: LAYOUT_BCTF
}
segment {
  window_samples: 24000
  hop_samples: 12000
  last_segment: LAST_SEGMENT_PAD
}
output {
  name: "embedding"
  kind: EMBEDDING
  source: "embedding"
  dim: 32
}
batching {
  max_batch_size: 8
}
"""


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(32, 32)

    def forward(self, x: torch.Tensor):
        x = torch.relu(self.c1(x / 5.0))
        x = torch.nn.functional.avg_pool2d(x, 2)
        x = torch.relu(self.c2(x)).mean(dim=3)
        x = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return {"embedding": torch.tanh(self.fc(x))}


def run(cmd, log, **kw):
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n{r.stdout}{r.stderr}\n")
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    print(f"  {os.path.basename(cmd[1])}: {time.time() - t0:.1f} s", flush=True)
    return r.stdout


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64) / 32768


def served_segments(wav):
    """1 s windows, 0.5 s hop, last partial window zero-padded (the config)."""
    W, H = frontend.SEGMENT_SAMPLES, frontend.SEGMENT_HOP
    segs, s = [], 0
    while True:
        c = wav[s:s + W]
        segs.append(np.concatenate([c, np.zeros(W - len(c))]))
        if s + W >= len(wav):
            return np.stack(segs)
        s += H


def check_close(name, got, want, tol, errors):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        errors.append(f"{name}: shape {got.shape} != {want.shape}")
        return
    err = np.abs(got - want).max()
    print(f"  {name}: max abs error {err:.2e} (tol {tol:.1e}, max|ref| "
          f"{np.abs(want).max():.3g})")
    if err > tol:
        errors.append(f"{name}: max abs error {err:.3g} > {tol:.3g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--keep", default="", help="keep the work folder here")
    a = ap.parse_args()
    t_start = time.time()
    errors = []
    tmp_obj = None
    if a.keep:
        tmp = a.keep
        os.makedirs(tmp, exist_ok=True)
    else:
        tmp_obj = tempfile.TemporaryDirectory(prefix="teacher_student_loop_")
        tmp = tmp_obj.name
    log = os.path.join(tmp, "log.txt")
    wavs = os.path.join(tmp, "wav")
    npz = os.path.join(tmp, "train.npz")
    print("1. render data", flush=True)
    if not os.path.exists(npz):
        run([PY, os.path.join(ROOT, "tools", "synth", "build_dataset.py"),
             "--font", "FluidR3_GM", "--seed", str(SEED), "--clips", "6",
             "--clip-seconds", "4", "--batch-clips", "6", "--no-augment",
             "--save-wav", wavs, "--out", npz], log)
    wav_files = sorted(os.listdir(wavs))
    assert len(wav_files) == 6, wav_files

    print("2. teacher: serve, audiotag bulk --embeddings=segments", flush=True)
    teacher_repo = os.path.join(tmp, "teacher_repo")
    os.makedirs(os.path.join(teacher_repo, "teacher", "1"), exist_ok=True)
    torch.manual_seed(1)
    torch.jit.script(Teacher().eval()).save(os.path.join(teacher_repo, "teacher", "1",
                                                          "model.pt"))
    with open(os.path.join(teacher_repo, "teacher", "config.pbtxt"), "w") as f:
        f.write(TEACHER_CONFIG)
    bulk = os.path.join(tmp, "bulk")
    t0 = time.time()
    with Server(a.build_dir, teacher_repo, ready_models=["teacher"]) as srv:
        srv.bulk(wavs, bulk, ["teacher"], embeddings="segments")
    index = [json.loads(l) for l in open(os.path.join(bulk, "embeddings", "teacher__embedding",
                                                      "index.jsonl"))]
    print(f"  bulk: {len(index)} tracks, {sum(e['rows'] for e in index)} segment rows "
          f"({time.time() - t0:.1f} s)", flush=True)
    if len(index) != 6 or any(len(e.get("segments", [])) != e["rows"] for e in index):
        errors.append(f"bulk index: {index[:2]}")
    seg0 = index[0]["segments"][:2]
    if not np.allclose(seg0, [[0, 1.5], [0.75, 2.25]]):
        errors.append(f"teacher segment times {seg0}")

    print("3. train the student with the teacher regulariser, export", flush=True)
    ck = os.path.join(tmp, "student.pt")
    out = run([PY, os.path.join(TRAIN, "train.py"), "--train", npz, "--out", ck,
               "--steps", "6", "--batch", "16", "--p-mix", "0.2", "--widths", "8,16,32,32",
               "--teacher-embeddings", bulk, "--teacher-weight", "0.5"], log)
    if "6/6 training clips have teacher embeddings" not in out or "final running dCor" not in out:
        errors.append("train.py did not use the teacher: " + out[-1500:])
    saved = torch.load(ck)
    if not saved.get("teacher") or saved["teacher"]["weight"] != 0.5:
        errors.append(f"checkpoint teacher info: {saved.get('teacher')}")
    repo = os.path.join(tmp, "repo")
    run([PY, os.path.join(TRAIN, "export.py"), "--model", ck, "--out",
         os.path.join(repo, "student"), "--parity", os.path.join(tmp, "student_parity.json")],
        log)

    print("4. reprogram the frozen student: transform + head", flush=True)
    run([PY, os.path.join(TRAIN, "reprogram.py"), "--backbone", os.path.join(repo, "student"),
         "--train", npz, "--out-dir", repo, "--prefix", "rp", "--steps", "6", "--batch", "16",
         "--lr", "3e-2"], log)
    for k in ("transform", "backbone", "head"):
        if not os.path.exists(os.path.join(repo, f"rp_{k}", "1", "model.pt")):
            errors.append(f"rp_{k} not exported")
    if "from_model" not in open(os.path.join(repo, "rp_head", "config.pbtxt")).read():
        errors.append("rp_head is not a stage")

    print("5. serve student + pipeline, compare with Python", flush=True)
    test_wav = os.path.join(wavs, wav_files[-1])
    wav = read_wav(test_wav)
    x = frontend.logmel(torch.from_numpy(served_segments(wav)))[:, None]  # [S,1,97,64]
    student = torch.jit.load(os.path.join(repo, "student", "1", "model.pt"))
    tr = torch.jit.load(os.path.join(repo, "rp_transform", "1", "model.pt"))
    bb = torch.jit.load(os.path.join(repo, "rp_backbone", "1", "model.pt"))
    hd = torch.jit.load(os.path.join(repo, "rp_head", "1", "model.pt"))
    with torch.no_grad():
        s_out = student(x)
        feats = tr(x)["features"]
        b_out = bb(feats)
        h_logits = hd(b_out["embedding"])["logits"]
        # the transform really changed the input, and the backbone is frozen
        plain = student(x)["embedding"]
    ref = {"student_p": torch.sigmoid(s_out["logits"]).numpy(),
           "student_e": s_out["embedding"].numpy(),
           "backbone_e": b_out["embedding"].numpy(),
           "head_p": torch.sigmoid(h_logits).numpy()}
    moved = (feats - x[:, 0]).abs().max().item()
    print(f"  transform moved the log-mel by up to {moved:.3g}; backbone embedding differs "
          f"from the plain student's by up to "
          f"{(b_out['embedding'] - plain).abs().max().item():.3g}")
    if moved == 0:
        errors.append("the input transform is still the identity after training")
    models = ["student", "rp_transform", "rp_backbone", "rp_head"]
    with Server(a.build_dir, repo, ready_models=models) as srv:
        resp = srv.analyze(test_wav, models=models,
                           outputs="tags,activations,embeddings,segment_embeddings")
    st = result_for(resp, "student")
    names = sorted(o["name"] for o in st["outputs"])
    print(f"  student outputs: {names}, {st['num_segments']} segments")
    if names != ["activations", "embedding", "tags"]:
        errors.append(f"student outputs {names}")
    if st["num_segments"] != len(x):
        errors.append(f"student num_segments {st['num_segments']} != {len(x)}")
    check_close("student activations", [f["scores"] for f in output(st, "activations")["frames"]],
                ref["student_p"], PROB_TOL, errors)
    e = ref["student_e"]
    check_close("student segment embeddings",
                [s["values"] for s in output(st, "embedding")["segments"]], e,
                1e-3 + 1e-4 * np.abs(e).max(), errors)
    bbr = result_for(resp, "rp_backbone")
    e = ref["backbone_e"]
    check_close("rp_backbone segment embeddings",
                [s["values"] for s in output(bbr, "embedding")["segments"]], e,
                1e-3 + 1e-4 * np.abs(e).max(), errors)
    hr = result_for(resp, "rp_head")
    check_close("rp_head activations (transform -> backbone -> head)",
                [f["scores"] for f in output(hr, "activations")["frames"]], ref["head_p"],
                PROB_TOL, errors)
    print(f"runtime {time.time() - t_start:.1f} s")
    if tmp_obj:
        tmp_obj.cleanup()
    if errors:
        print("FAILED:\n  " + "\n  ".join(errors))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
