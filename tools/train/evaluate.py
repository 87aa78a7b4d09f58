#!/usr/bin/python3
"""Evaluate a trained student on synthetic evaluation sets.

Segment level (as served: 1 s windows, 0.5 s hop): per-class average
precision (own numpy implementation), F1 at threshold 0.5, macro over the
18 supported classes (mandolin and ukulele are not in General MIDI and are
never trained or evaluated). Clip level: segment probabilities mean-pooled,
a class is a clip positive if it is a positive in any segment.
Solo sets (one instrument per clip): top-1 accuracy of the mean-pooled clip
probabilities, per class; also how often the top class is one that sounds in
the clip (a drum loop with a ride pattern really does contain cymbals).
"""
import argparse
import json
import time

import numpy as np
import torch

import data
import music_labels
from model import Student


def average_precision(scores, targets):
    """AP = mean over positives of precision at each positive's rank
    (ties broken by a stable descending sort). NaN when there is no positive."""
    targets = np.asarray(targets, dtype=bool)
    n_pos = int(targets.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = targets[order]
    cum = np.cumsum(hits)
    ranks = np.arange(1, len(hits) + 1)
    return float(np.sum((cum / ranks)[hits]) / n_pos)


def f1_score(pred, targets):
    tp = float(np.sum(pred & targets))
    fp = float(np.sum(pred & ~targets))
    fn = float(np.sum(~pred & targets))
    if tp + fp + fn == 0:
        return float("nan")
    return 2 * tp / (2 * tp + fp + fn)


def load_model(path):
    ck = torch.load(path, map_location="cpu")
    m = Student(tuple(ck["widths"]))
    m.load_state_dict(ck["state"])
    m.eval()
    return m, ck


def predict(model, x, batch=256):
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch])[:, None]
            out.append(torch.sigmoid(model(xb)["logits"]).numpy())
    return np.concatenate(out)


def metrics(probs, target, mask, supported):
    res = {}
    for k in supported:
        keep = mask[:, k] > 0
        s, t = probs[keep, k], target[keep, k] > 0
        res[music_labels.LABELS[k]] = {
            "ap": average_precision(s, t), "f1": f1_score(s >= 0.5, t),
            "positives": int(t.sum()), "n": int(keep.sum())}
    aps = [v["ap"] for v in res.values() if not np.isnan(v["ap"])]
    f1s = [v["f1"] for v in res.values() if not np.isnan(v["f1"])]
    return {"per_class": res, "mAP": float(np.mean(aps)), "macro_F1": float(np.mean(f1s))}


def evaluate_set(model, path, supported):
    feats, roll, offsets, metas = data.load([path])
    x, t, m, clip = data.served_segments(feats, roll, offsets)
    t0 = time.time()
    p = predict(model, x)
    dt = time.time() - t0
    seg = metrics(p, t, m, supported)
    n_clips = len(offsets) - 1
    cp = np.stack([p[clip == c].mean(0) for c in range(n_clips)])
    ct = np.stack([t[clip == c].max(0) for c in range(n_clips)])
    cm = np.ones_like(ct)
    clipm = metrics(cp, ct, cm, supported)
    return {"segments": int(len(x)), "clips": n_clips, "segment": seg, "clip": clipm,
            "seconds": dt, "segments_per_s": len(x) / dt}


def evaluate_solo(model, path, supported):
    feats, roll, offsets, metas = data.load([path])
    x, t, m, clip = data.served_segments(feats, roll, offsets)
    p = predict(model, x)
    res = {}
    sup = np.array(supported)
    for c in range(len(offsets) - 1):
        cls = metas[c]["parts"][0]["class"]
        pooled = p[clip == c].mean(0)
        top_i = int(sup[np.argmax(pooled[sup])])
        top = music_labels.LABELS[top_i]
        present = t[clip == c].max(0)  # classes sounding in the clip (drums may bring cymbals)
        r = res.setdefault(cls, {"clips": 0, "top1": 0, "top1_present": 0, "confusions": {}})
        r["clips"] += 1
        r["top1"] += int(top == cls)
        r["top1_present"] += int(present[top_i] > 0)
        if top != cls:
            r["confusions"][top] = r["confusions"].get(top, 0) + 1
    for r in res.values():
        r["top1_accuracy"] = r["top1"] / r["clips"]
        r["top1_present_accuracy"] = r["top1_present"] / r["clips"]
    return res


def markdown(results):
    lines = []
    for name, r in results["sets"].items():
        s, c = r["segment"], r["clip"]
        lines.append(f"### {name}\n")
        lines.append(f"{r['clips']} clips, {r['segments']} segments. Segment level: "
                     f"mAP **{s['mAP']:.3f}**, macro F1 **{s['macro_F1']:.3f}**; "
                     f"clip level: mAP {c['mAP']:.3f}, macro F1 {c['macro_F1']:.3f}.\n")
        lines.append("| class | seg AP | seg F1 | seg positives | clip AP | clip F1 |")
        lines.append("|---|---|---|---|---|---|")
        for k, v in s["per_class"].items():
            cv = c["per_class"][k]
            lines.append(f"| {k} | {v['ap']:.3f} | {v['f1']:.3f} | {v['positives']}/{v['n']} "
                         f"| {cv['ap']:.3f} | {cv['f1']:.3f} |")
        lines.append("")
    for name, r in results["solo"].items():
        lines.append(f"### {name} (top-1 of mean-pooled clip scores)\n")
        lines.append("| class | clips | top-1 = the class | top-1 sounds in the clip | "
                     "top-1 when wrong |")
        lines.append("|---|---|---|---|---|")
        for k, v in r.items():
            conf = ", ".join(f"{a} x{b}" for a, b in sorted(v["confusions"].items()))
            lines.append(f"| {k} | {v['clips']} | {v['top1_accuracy']:.3f} | "
                         f"{v['top1_present_accuracy']:.3f} | {conf} |")
        lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--sets", nargs="*", default=[], help="name=path.npz")
    ap.add_argument("--solo", nargs="*", default=[], help="name=path.npz")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--markdown", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, ck = load_model(a.model)
    supported = [i for i, n in enumerate(music_labels.LABELS)
                 if n not in music_labels.UNSUPPORTED]
    results = {"sets": {}, "solo": {}}
    for spec in a.sets:
        name, path = spec.split("=", 1)
        results["sets"][name] = evaluate_set(model, path, supported)
        r = results["sets"][name]
        print(f"{name}: segment mAP {r['segment']['mAP']:.3f} macro F1 "
              f"{r['segment']['macro_F1']:.3f} | clip mAP {r['clip']['mAP']:.3f} "
              f"({r['segments_per_s']:.0f} seg/s)", flush=True)
    for spec in a.solo:
        name, path = spec.split("=", 1)
        results["solo"][name] = evaluate_solo(model, path, supported)
        print(name, {k: round(v["top1_accuracy"], 3) for k, v in results["solo"][name].items()},
              flush=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(results))


if __name__ == "__main__":
    main()
