#!/usr/bin/python3
"""Python-side tests of the training tools' new parts (no server needed):

  - calibrate.py: the F1 curve equals a brute-force count; the chosen
    threshold maximises F1 on the fitting data; moving it to 0.5 with
    bias = -logit(t) gives the same F1 at 0.5;
  - export.py: classes without training data (class_frames == 0) and only
    those get the zero row and -12 bias; --calibration writes
    `calibration { bias: [...] }` with 20 values into the tags and
    activations outputs (not the embedding), 0 for unsupported classes; the
    parity JSON's probabilities are sigmoid(logits + bias); when protoc and
    python3-protobuf are there and the proto has OutputConfig.calibration,
    the config parses as an audiotag.v1.ModelConfig with those values;
    with --build-dir, the real audiotag-server serves the calibrated export
    and its activations / tags match the parity JSON
    (test_default_model_parity.py), i.e. the server applies the calibration;
  - evaluate.py: recall@k and solo top-1 on hand-made scores;
  - train.py: the stem mixer draws distinct classes, ORs the targets and
    sums power (a one-stem mixture at 0 dB gain and no colouration is the
    stem itself).

    /usr/bin/python3 tools/train/tests/test_calibration.py [--build-dir build]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))

import calibrate  # noqa: E402
import evaluate  # noqa: E402
import music_labels  # noqa: E402
import train  # noqa: E402
from model import Student  # noqa: E402

LABELS = music_labels.LABELS
FAILS = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg, flush=True)
    if not cond:
        FAILS.append(msg)


def test_calibrate():
    rng = np.random.default_rng(0)
    z = rng.normal(size=3000) * 2
    t = rng.random(3000) < 1 / (1 + np.exp(-(2 * z - 3)))  # positives need z > ~1.5
    grid = np.array([-2.0, 0.0, 0.7, 1.5, 3.0])
    f = calibrate.f1_curve(z, t, grid)
    brute = []
    for u in grid:
        p = z >= u
        tp, fp, fn = (p & t).sum(), (p & ~t).sum(), (~p & t).sum()
        brute.append(2 * tp / (2 * tp + fp + fn))
    check(np.allclose(f, brute), f"f1_curve equals brute force {np.round(f, 4)}")
    u = calibrate.fit_threshold(z, t, 20)
    best = calibrate.f1_curve(z, t).max()
    at_u = calibrate.f1_curve(z, t, np.array([u]))[0]
    check(u > 0.3 and at_u >= best - 0.02, f"threshold {u:.2f} near the F1 maximum "
          f"({at_u:.3f} vs {best:.3f})")
    n = 3000
    logits = np.zeros((n, 20))
    target = np.zeros((n, 20))
    mask = np.ones((n, 20))
    logits[:, 3], target[:, 3] = z, t
    supported = [3, 5]
    res = calibrate.calibrate(logits, target, mask, supported, 20)
    check(abs(res["bias"][3] + u) < 1e-6, "bias = -threshold logit")
    check(all(res["bias"][k] == 0 for k in range(20) if k != 3),
          "classes without positives / unsupported keep bias 0")
    cal = 1 / (1 + np.exp(-(z + res["bias"][3])))
    p = cal >= 0.5
    f05 = 2 * (p & t).sum() / (2 * (p & t).sum() + (p & ~t).sum() + (~p & t).sum())
    check(abs(f05 - at_u) < 1e-9, f"after calibration F1 at 0.5 = F1 at the threshold "
          f"({f05:.4f})")


def test_export(tmp, build_dir):
    torch.manual_seed(0)
    m = Student((8, 16, 32, 32))
    frames = [100] * 20
    frames[LABELS.index("mandolin")] = 0  # ukulele has data: it must be trained normally
    ck = os.path.join(tmp, "s.pt")
    torch.save({"state": m.state_dict(), "widths": (8, 16, 32, 32), "step": 0,
                "class_frames": frames}, ck)
    rng = np.random.default_rng(1)
    bias = [round(float(v), 3) for v in rng.uniform(-2, 2, 20)]
    cal = os.path.join(tmp, "cal.json")
    json.dump({"labels": LABELS, "bias": bias, "scale": []}, open(cal, "w"))
    out = os.path.join(tmp, "repo", "student")
    parity = os.path.join(tmp, "parity.json")
    r = subprocess.run([sys.executable, os.path.join(HERE, "..", "export.py"), "--model", ck,
                        "--out", out, "--parity", parity, "--calibration", cal],
                       capture_output=True, text=True)
    check(r.returncode == 0, "export.py --calibration ran" + (r.stderr[-2000:] if r.returncode
                                                             else ""))
    if r.returncode:
        return
    text = open(os.path.join(out, "config.pbtxt")).read()
    check(text.count("calibration {") == 2, "calibration in tags and activations only")
    want = list(bias)
    want[LABELS.index("mandolin")] = 0.0
    got = [float(v) for v in text.split("bias: [")[1].split("]")[0].split(",")]
    check(np.allclose(got, want, atol=1e-6), "config bias = calibration, 0 for mandolin")
    check("mandolin unsupported" in text and "ukulele unsupported" not in text,
          "description lists only the class without data as unsupported")
    net = torch.jit.load(os.path.join(out, "1", "model.pt"))
    sd = dict(net.named_parameters())
    w, b = sd["head.weight"], sd["head.bias"]
    km, ku = LABELS.index("mandolin"), LABELS.index("ukulele")
    check(float(w[km].abs().sum()) == 0 and float(b[km]) == -12.0, "mandolin row zero, -12")
    check(float(w[ku].abs().sum()) > 0, "ukulele row trained (not zeroed)")
    par = json.load(open(parity))
    seg = par["segments"][0]
    z = np.asarray(seg["logits"])
    p = 1 / (1 + np.exp(-(z + np.asarray(want))))
    check(np.allclose(p, seg["probabilities"], atol=2e-6),
          "parity probabilities = sigmoid(logits + bias)")
    check(par["calibration"]["bias"] == [float(np.float32(v)) for v in want],
          "parity JSON records the calibration")
    parse_config(tmp, text, want)
    if build_dir:
        r = subprocess.run([sys.executable, os.path.join(HERE, "test_default_model_parity.py"),
                            "--build-dir", build_dir, "--repo", os.path.join(tmp, "repo"),
                            "--parity", parity], capture_output=True, text=True)
        check(r.returncode == 0, "the server serves the calibrated export as the parity JSON "
              "says\n" + "\n".join(r.stdout.splitlines()[-5:]) + r.stderr[-1500:])
        # the calibration must matter: raw sigmoids differ from the served scores
        check(np.abs(1 / (1 + np.exp(-z)) - np.asarray(seg["probabilities"])).max() > 0.05,
              "the calibration changes the scores (so the served check means something)")


def parse_config(tmp, text, want):
    proto = os.path.join(ROOT, "proto", "audiotag", "v1", "model_config.proto")
    if "message Calibration" not in open(proto).read():
        print("skip config parse: proto has no OutputConfig.calibration yet")
        return
    try:
        from google.protobuf import text_format
    except ImportError:
        print("skip config parse: no python3-protobuf")
        return
    gen = os.path.join(tmp, "gen")
    os.makedirs(gen, exist_ok=True)
    r = subprocess.run(["protoc", f"-I{os.path.join(ROOT, 'proto')}", f"--python_out={gen}",
                        proto], capture_output=True, text=True)
    if r.returncode:
        print("skip config parse: protoc failed:", r.stderr[-500:])
        return
    sys.path.insert(0, gen)
    from audiotag.v1 import model_config_pb2
    cfg = text_format.Parse(text, model_config_pb2.ModelConfig())
    outs = {o.name: o for o in cfg.output}
    check(np.allclose(list(outs["tags"].calibration.bias), want, atol=1e-6)
          and np.allclose(list(outs["activations"].calibration.bias), want, atol=1e-6)
          and not outs["embedding"].HasField("calibration"),
          "config.pbtxt parses as audiotag.v1.ModelConfig with the calibration")


def test_metrics():
    L = len(LABELS)
    sup = [0, 1, 2, 3]
    cp = np.zeros((3, L))
    ct = np.zeros((3, L))
    cp[0, :4] = [0.9, 0.8, 0.1, 0.0]
    ct[0, [0, 1]] = 1  # both in top 2: 1.0
    cp[1, :4] = [0.9, 0.1, 0.8, 0.0]
    ct[1, [0, 1]] = 1  # class 1 not in top 2: 0.5
    cp[2, :4] = [0.1, 0.2, 0.3, 0.9]
    ct[2, [3]] = 1  # k = 1, right: 1.0
    r = evaluate.recall_at_k(cp, ct, sup)
    check(abs(r["mean"] - 2.5 / 3) < 1e-9 and abs(r["mixtures_mean"] - 0.75) < 1e-9,
          f"recall@k mean {r['mean']:.3f}, mixtures {r['mixtures_mean']:.3f}")
    check(r["per_class"][LABELS[1]] == 0.5 and r["per_class"][LABELS[0]] == 1.0,
          "recall@k per class")
    metas = [{"parts": [{"class": LABELS[0]}]}, {"parts": [{"class": LABELS[1]}]}]
    z = np.full((4, L), -5.0)
    z[0:2, 0] = 3.0  # clip 0: class 0 wins
    z[2:4, 0] = 3.0  # clip 1 (class 1): class 0 wins, unless class 0 is calibrated down
    z[2:4, 1] = 2.0
    t = np.zeros((4, L))
    t[0:2, 0] = 1
    t[2:4, 1] = 1
    sc = {"logits": z, "target": t, "mask": np.ones((4, L)), "clip": np.array([0, 0, 1, 1]),
          "metas": metas, "n_clips": 2}
    r = evaluate.evaluate_solo(sc, sup, np.ones(L), np.zeros(L))
    check(r["micro_top1"] == 0.5 and r["per_class"][LABELS[1]]["confusions"] == {LABELS[0]: 1},
          "solo top-1 and confusions")
    b = np.zeros(L)
    b[0] = -1.5
    r = evaluate.evaluate_solo(sc, sup, np.ones(L), b)
    check(r["micro_top1"] == 1.0, "solo top-1 on calibrated scores (as served)")


def test_mixer():
    rng = np.random.default_rng(0)
    T, F = 97, 64
    n_clips = 6
    feats = rng.uniform(-1.5, 1.5, (n_clips * 120, F)).astype(np.float16)
    roll = np.zeros((n_clips * 120, 20), np.uint8)
    offsets = np.arange(0, n_clips * 120 + 1, 120)
    classes = ["piano", "drums", "violin", "piano", "bass", None]
    for c, k in enumerate(classes):
        if k:
            roll[offsets[c]:offsets[c + 1], LABELS.index(k)] = 1
    s = train.Sampler(None, None, None, rng, 0.0, stems=(feats, roll, offsets, classes),
                      mix_counts=[0, 0, 0, 1], gain_db=12, p_eq=0.8)
    check(s.stem_classes == ["bass", "drums", "piano", "violin"], "stem classes")
    x, t, m = s.batch(32)
    check(tuple(x.shape) == (32, 1, T, F) and bool((t.sum(1) == 4).all()),
          "4-stem mixtures of 4 distinct classes, targets OR-ed")
    s1 = train.Sampler(None, None, None, np.random.default_rng(3), 0.0,
                       stems=(feats, roll, offsets, classes), mix_counts=[1], gain_db=0,
                       p_eq=0.0, level_db=0)
    s1.where = []
    p, r = s1.stem_mixture()
    xs = train.log_of(p)
    found = any(np.abs(xs - feats[a:a + T].astype(np.float32)).max() < 1e-4
                for a in range(0, len(feats) - T + 1))
    check(found, "a one-stem mixture at 0 dB without colouration is the stem's crop")
    w = train.parse_counts("0.3,0.3,0.25,0.15")
    check(abs(w.sum() - 1) < 1e-12 and len(w) == 4, "--mix-counts parsing")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="",
                    help="serve the calibrated export with this build's audiotag-server")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="train_cal_") as tmp:
        test_calibrate()
        test_export(tmp, a.build_dir)
        test_metrics()
        test_mixer()
    if FAILS:
        print(f"FAILED: {len(FAILS)}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
