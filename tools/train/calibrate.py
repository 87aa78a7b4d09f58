#!/usr/bin/python3
"""Per-class score calibration: thresholds chosen on held-out data, stored as
the bias of the model config's OutputConfig.calibration, so that a
probability of 0.5 means "present" for every class.

    calibrate.py --model student.pt --sets a.npz b.npz ... --out calibration.json
    calibrate.py --scores scores/a.npz scores/b.npz ... --out calibration.json

Data: segments exactly as served (1 s windows, 0.5 s hop), with the
per-segment targets and masks of tools/train/data.py (a class that only
starts or stops inside a segment is left out for it). --sets computes the
logits with --model; --scores reads logits saved by evaluate.py
--save-scores (so one can also fit on predictions of other models, e.g. the
held-out sources of a leave-one-source-out run).

Method, per class with at least --min-positives positive and as many
negative segments: the F1 of "logit >= u" on a grid of u in [-8, 8] (step
0.05 logit units), smoothed with a moving average over +-0.25, and the u
that maximises it, clamped to [-4, 4] (thresholds 0.018-0.982 on the
probability). bias[c] = -u (the server computes sigmoid(scale[c] * x[c] +
bias[c]), so the chosen threshold lands on 0.5); scale stays empty (1).
Classes with too few positives, and classes the checkpoint has no training
data for, keep bias 0.

Output JSON: labels, threshold (probability), bias, scale ([]), per-class
F1 at 0.5 before and at the chosen threshold on the fitting data, positives,
and the data it was fitted on.
"""
import argparse
import json

import numpy as np

import music_labels

LABELS = music_labels.LABELS
GRID = np.arange(-8.0, 8.0 + 1e-9, 0.05)
SMOOTH = 5  # +-5 grid steps = +-0.25 logit units
CLAMP = 4.0


def f1_curve(z, t, grid=GRID):
    """F1 of (z >= u) for every u of grid. z [N] logits, t [N] bool."""
    order = np.argsort(-z, kind="stable")
    zs, ts = z[order], t[order].astype(np.float64)
    tp_cum = np.concatenate([[0.0], np.cumsum(ts)])
    # number of items with z >= u: len - searchsorted on ascending -z
    n_at = np.searchsorted(-zs, -grid, side="right")
    tp = tp_cum[n_at]
    fp = n_at - tp
    fn = ts.sum() - tp
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1e-12), 0.0)


def fit_threshold(z, t, min_pos):
    """Logit threshold u maximising the smoothed F1, or None (too few data)."""
    t = t.astype(bool)
    if t.sum() < min_pos or (~t).sum() < min_pos:
        return None
    f = f1_curve(z, t)
    k = np.ones(2 * SMOOTH + 1) / (2 * SMOOTH + 1)
    fs = np.convolve(np.pad(f, SMOOTH, mode="edge"), k, mode="valid")
    u = float(GRID[int(np.argmax(fs))])
    return float(np.clip(u, -CLAMP, CLAMP))


def calibrate(logits, target, mask, supported, min_pos=20):
    """logits/target/mask [N, 20] -> dict (the calibration.json content)."""
    dim = logits.shape[1]
    bias = np.zeros(dim)
    thr = np.full(dim, 0.5)
    info = {}
    for c in range(dim):
        keep = mask[:, c] > 0
        z, t = logits[keep, c], target[keep, c] > 0
        entry = {"positives": int(t.sum()), "n": int(keep.sum())}
        if c in supported:
            u = fit_threshold(z, t, min_pos)
            if u is not None:
                bias[c] = -u
                thr[c] = 1 / (1 + np.exp(-u))
                entry["f1_at_0.5"] = float(f1_curve(z, t, np.array([0.0]))[0])
                entry["f1_at_threshold"] = float(f1_curve(z, t, np.array([u]))[0])
            else:
                entry["note"] = f"fewer than {min_pos} positives or negatives: bias 0"
        else:
            entry["note"] = "unsupported (no training data): bias 0"
        info[LABELS[c]] = entry
    return {"labels": LABELS, "method": "per-class F1-maximising threshold on held-out "
            "segments (calibrate.py)", "threshold": [round(float(v), 6) for v in thr],
            "bias": [round(float(v), 6) for v in bias], "scale": [], "per_class": info}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="", help="checkpoint (train.py), with --sets")
    ap.add_argument("--sets", nargs="*", default=[], help=".npz sets (build_dataset.py)")
    ap.add_argument("--scores", nargs="*", default=[], help="evaluate.py --save-scores files")
    ap.add_argument("--min-positives", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    zs, ts, ms = [], [], []
    supported = [i for i, n in enumerate(LABELS) if n not in music_labels.UNSUPPORTED]
    if a.sets:
        import torch
        import evaluate
        torch.set_num_threads(a.threads)
        model, ck = evaluate.load_model(a.model)
        supported = evaluate.supported_classes(ck)
        for p in a.sets:
            sc = evaluate.segment_scores(model, p)
            zs.append(sc["logits"])
            ts.append(sc["target"])
            ms.append(sc["mask"])
    elif a.model:
        import evaluate
        supported = evaluate.supported_classes(evaluate.load_model(a.model)[1])
    for p in a.scores:
        d = np.load(p)
        zs.append(d["logits"].astype(np.float64))
        ts.append(d["target"])
        ms.append(d["mask"])
    if not zs:
        ap.error("give --model with --sets, or --scores")
    res = calibrate(np.concatenate(zs), np.concatenate(ts), np.concatenate(ms), supported,
                    a.min_positives)
    res["fit_on"] = {"model": a.model or None, "sets": a.sets, "scores": a.scores}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    for n, e in res["per_class"].items():
        if "f1_at_threshold" in e:
            k = LABELS.index(n)
            print(f"{n:18s} threshold {res['threshold'][k]:.3f}  F1 {e['f1_at_0.5']:.3f} -> "
                  f"{e['f1_at_threshold']:.3f}  ({e['positives']}/{e['n']})")
        else:
            print(f"{n:18s} {e.get('note', '')}")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
