#!/usr/bin/python3
"""Evaluate a trained student on synthetic evaluation sets, as audiotag
serves it (1 s segments, 0.5 s hop, full segments; with --calibration the
per-class affine map of the exported config is applied to the logits before
the sigmoid, exactly as the server does).

Classes: the supported ones, i.e. those with training examples (the
checkpoint's class_frames; older checkpoints: all but
music_labels.UNSUPPORTED). Every macro average is over supported classes
that have positives in the set.

Mixture sets (--sets name=path.npz, clips of 1-4 instruments):
  segment level: per-class average precision (own numpy implementation) and
    F1 at threshold 0.5 of the (calibrated) probabilities; segments where a
    class only starts or stops (1-14 of 97 frames) are left out for it;
  clip level: segment probabilities mean-pooled (audiotag's POOLING_MEAN over
    full segments); a class is present in a clip if it is a positive in any
    of its segments;
  recall@k: per clip, k = number of supported classes present, the fraction
    of them among the k highest clip scores; reported as the mean over all
    clips, over clips with >= 2 classes ("mixtures"), and per class (of the
    clips that contain the class, the share where it is in the top k) with
    the macro mean over classes.
Solo sets (--solo name=path.npz, one instrument per clip): top-1 of the
  mean-pooled clip scores among the supported classes, per class (the clip's
  class is its one part's class), macro (mean over classes) and micro (over
  clips); also how often the top class is one that sounds in the clip (a drum
  loop with a ride pattern really does contain cymbals), and the confusions.

    evaluate.py --model student.pt --sets mix=eval_mix.npz --solo solo=eval_solo.npz \
        --calibration calibration.json --out eval.json --markdown eval.md
    evaluate.py --combine "FluidR3_GM=lofo_fluid/eval.json" ... --markdown lofo.md

--combine merges evaluation JSONs (one per held-out source of a
leave-one-source-out run, each with one solo and one mixture set) into one
per-class markdown table.
"""
import argparse
import json
import os
import time

import numpy as np
import torch

import data
import music_labels
from model import Student

LABELS = music_labels.LABELS


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


def nanmean(v):
    v = [x for x in v if x is not None and not np.isnan(x)]
    return float(np.mean(v)) if v else float("nan")


def load_model(path):
    ck = torch.load(path, map_location="cpu")
    m = Student(tuple(ck["widths"]), input_norm=ck.get("input_norm", "none"))
    m.load_state_dict(ck["state"])
    m.eval()
    return m, ck


def supported_classes(ck):
    """Indices of the classes the checkpoint was trained on (active frames
    > 0), or, for checkpoints without that record, all but UNSUPPORTED."""
    if ck.get("class_frames") is not None:
        return [i for i, n in enumerate(ck["class_frames"]) if n > 0]
    return [i for i, n in enumerate(LABELS) if n not in music_labels.UNSUPPORTED]


def load_calibration(path, dim=len(LABELS)):
    """calibration.json (calibrate.py) -> (scale [dim], bias [dim]) float64;
    no path: identity."""
    if not path:
        return np.ones(dim), np.zeros(dim)
    c = json.load(open(path))
    scale = np.asarray(c.get("scale") or [1.0] * dim, dtype=np.float64)
    bias = np.asarray(c.get("bias") or [0.0] * dim, dtype=np.float64)
    assert scale.shape == (dim,) and bias.shape == (dim,), path
    return scale, bias


def predict_logits(model, x, batch=256):
    """x [N, 97, 64] float32 -> logits [N, 20] float64."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i:i + batch])[:, None]
            out.append(model(xb)["logits"].numpy())
    return np.concatenate(out).astype(np.float64)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def segment_scores(model, path, only_synth=()):
    """Served segments of a set and the model's logits:
    dict(logits [N, 20], target [N, 20], mask [N, 20], clip [N], metas, seconds).
    only_synth: keep only clips with a part rendered by these synthesisers
    (data.synth_match); clip indices stay those of the set."""
    feats, roll, offsets, metas = data.load([path])
    x, t, m, clip = data.served_segments(feats, roll, offsets)
    if only_synth:
        keep = np.array([data.synth_match(metas[c], only_synth) for c in clip], dtype=bool)
        x, t, m, clip = x[keep], t[keep], m[keep], clip[keep]
    t0 = time.time()
    z = predict_logits(model, x)
    return {"logits": z, "target": t, "mask": m, "clip": clip, "metas": metas,
            "n_clips": len(offsets) - 1, "seconds": time.time() - t0}


def metrics(probs, target, mask, supported):
    res = {}
    for k in supported:
        keep = mask[:, k] > 0
        s, t = probs[keep, k], target[keep, k] > 0
        res[LABELS[k]] = {"ap": average_precision(s, t), "f1": f1_score(s >= 0.5, t),
                          "positives": int(t.sum()), "n": int(keep.sum())}
    return {"per_class": res, "mAP": nanmean([v["ap"] for v in res.values()]),
            "macro_F1": nanmean([v["f1"] for v in res.values()])}


def clip_pool(p, t, clip, n_clips):
    """Mean-pooled clip probabilities and clip presence [n_clips, 20]."""
    present = [c for c in range(n_clips) if (clip == c).any()]
    cp = np.stack([p[clip == c].mean(0) for c in present])
    ct = np.stack([t[clip == c].max(0) for c in present])
    return cp, ct


def recall_at_k(cp, ct, supported):
    """Per clip: k = classes present (supported only); fraction of them in the
    top k of the clip scores. Returns the summary dict."""
    sup = np.asarray(supported)
    per_clip, n_present = [], []
    hits = {LABELS[k]: [] for k in supported}
    for s, t in zip(cp[:, sup], ct[:, sup] > 0):
        k = int(t.sum())
        if k == 0:
            continue
        top = set(np.argsort(-s, kind="stable")[:k].tolist())
        present = np.nonzero(t)[0]
        per_clip.append(np.mean([j in top for j in present]))
        n_present.append(k)
        for j in present:
            hits[LABELS[sup[j]]].append(j in top)
    per_clip, n_present = np.asarray(per_clip), np.asarray(n_present)
    per_class = {c: (float(np.mean(v)) if v else float("nan")) for c, v in hits.items()}
    by_k = {str(k): float(per_clip[n_present == k].mean()) for k in sorted(set(n_present))}
    mix = per_clip[n_present >= 2]
    return {"clips": int(len(per_clip)), "mean": float(per_clip.mean()) if len(per_clip) else
            float("nan"), "mixtures": int(len(mix)),
            "mixtures_mean": float(mix.mean()) if len(mix) else float("nan"),
            "by_k": by_k, "per_class": per_class,
            "per_class_clips": {c: len(v) for c, v in hits.items()},
            "macro": nanmean(per_class.values())}


def evaluate_set(sc, supported, scale, bias):
    p = sigmoid(sc["logits"] * scale + bias)
    t, m, clip = sc["target"], sc["mask"], sc["clip"]
    seg = metrics(p, t, m, supported)
    cp, ct = clip_pool(p, t, clip, sc["n_clips"])
    clipm = metrics(cp, ct, np.ones_like(ct), supported)
    return {"kind": "mixture", "segments": int(len(p)), "clips": int(len(cp)),
            "segment": seg, "clip": clipm, "recall_at_k": recall_at_k(cp, ct, supported),
            "seconds": sc["seconds"], "segments_per_s": len(p) / max(sc["seconds"], 1e-9)}


def evaluate_solo(sc, supported, scale, bias):
    p = sigmoid(sc["logits"] * scale + bias)
    t, clip, metas = sc["target"], sc["clip"], sc["metas"]
    res, by_synth = {}, {}
    sup = np.array(supported)
    n_right = n_clips = 0
    for c in range(sc["n_clips"]):
        if not (clip == c).any() or len(metas[c]["parts"]) != 1:
            continue
        cls = metas[c]["parts"][0]["class"]
        pooled = p[clip == c].mean(0)
        top_i = int(sup[np.argmax(pooled[sup])])
        top = LABELS[top_i]
        present = t[clip == c].max(0)  # classes sounding in the clip (drums may bring cymbals)
        src = metas[c]["parts"][0].get("synth")
        if src:  # our own synthesisers: top-1 per synthesiser too
            b = by_synth.setdefault(src, {"clips": 0, "top1": 0})
            b["clips"] += 1
            b["top1"] += int(top == cls)
        r = res.setdefault(cls, {"clips": 0, "top1": 0, "top1_present": 0, "confusions": {}})
        r["clips"] += 1
        r["top1"] += int(top == cls)
        r["top1_present"] += int(present[top_i] > 0)
        n_right += int(top == cls)
        n_clips += 1
        if top != cls:
            r["confusions"][top] = r["confusions"].get(top, 0) + 1
    for r in res.values():
        r["top1_accuracy"] = r["top1"] / r["clips"]
        r["top1_present_accuracy"] = r["top1_present"] / r["clips"]
    seg = metrics(p, t, sc["mask"], supported)
    return {"kind": "solo", "clips": n_clips, "per_class": dict(sorted(res.items())),
            "macro_top1": nanmean([r["top1_accuracy"] for r in res.values()]),
            "micro_top1": n_right / max(n_clips, 1), "segment": seg,
            "by_synth": {k: dict(v, top1_accuracy=v["top1"] / v["clips"])
                         for k, v in sorted(by_synth.items())}}


def save_scores(path, sc):
    np.savez(path, logits=sc["logits"].astype(np.float32), target=sc["target"],
             mask=sc["mask"], clip=sc["clip"], meta=np.array(json.dumps(sc["metas"])))


def f3(v):
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def markdown(results):
    lines = [f"Supported classes ({len(results['supported'])}): "
             f"{', '.join(results['supported'])}. Calibration: "
             f"{results.get('calibration') or 'none (threshold 0.5 on raw sigmoid)'}.\n"]
    for name, r in results["sets"].items():
        s, c, rk = r["segment"], r["clip"], r["recall_at_k"]
        lines.append(f"### {name}\n")
        lines.append(f"{r['clips']} clips, {r['segments']} segments. Segment level: "
                     f"mAP **{f3(s['mAP'])}**, macro F1 **{f3(s['macro_F1'])}**; "
                     f"clip level: mAP {f3(c['mAP'])}, macro F1 {f3(c['macro_F1'])}; "
                     f"recall@k: mixtures (>= 2 classes, {rk['mixtures']} clips) "
                     f"**{f3(rk['mixtures_mean'])}**, all clips {f3(rk['mean'])}, class macro "
                     f"{f3(rk['macro'])}; by k: "
                     + ", ".join(f"{k}: {f3(v)}" for k, v in rk["by_k"].items()) + ".\n")
        lines.append("| class | seg AP | seg F1 | seg positives | clip AP | clip F1 | "
                     "recall@k (clips) |")
        lines.append("|---|---|---|---|---|---|---|")
        for k, v in s["per_class"].items():
            cv = c["per_class"][k]
            lines.append(f"| {k} | {f3(v['ap'])} | {f3(v['f1'])} | {v['positives']}/{v['n']} "
                         f"| {f3(cv['ap'])} | {f3(cv['f1'])} | {f3(rk['per_class'][k])} "
                         f"({rk['per_class_clips'][k]}) |")
        lines.append("")
    for name, r in results["solo"].items():
        lines.append(f"### {name} (top-1 of mean-pooled clip scores)\n")
        lines.append(f"{r['clips']} clips: top-1 class macro **{f3(r['macro_top1'])}**, "
                     f"micro {f3(r['micro_top1'])}; segment mAP {f3(r['segment']['mAP'])}."
                     + ("" if not r.get("by_synth") else " By synthesiser: " + ", ".join(
                         f"{k} {v['top1']}/{v['clips']}" for k, v in r["by_synth"].items())
                        + ".") + "\n")
        lines.append("| class | clips | top-1 = the class | top-1 sounds in the clip | "
                     "top-1 when wrong |")
        lines.append("|---|---|---|---|---|")
        for k, v in r["per_class"].items():
            conf = ", ".join(f"{a} x{b}" for a, b in sorted(v["confusions"].items()))
            lines.append(f"| {k} | {v['clips']} | {f3(v['top1_accuracy'])} | "
                         f"{f3(v['top1_present_accuracy'])} | {conf} |")
        lines.append("")
    return "\n".join(lines)


def combine(specs):
    """Leave-one-source-out tables: one evaluation JSON per held-out source,
    each with (at least) one solo set and one mixture set; the first of each
    is used. Table 1: solo top-1 and mixture recall@k per class and held-out
    source, with the mean over sources; table 2: segment AP and F1 (at the
    calibrated thresholds) on the mixture sets."""
    runs = []
    for spec in specs:
        name, path = spec.split("=", 1)
        r = json.load(open(path))
        solo = next(iter(r["solo"].values()), None)
        mix = next(iter(r["sets"].values()), None)
        runs.append((name, solo, mix))
    classes = []
    for _, solo, mix in runs:
        for d in ([solo["per_class"]] if solo else []) + \
                 ([mix["segment"]["per_class"]] if mix else []):
            classes += [c for c in d if c not in classes]
    classes = [c for c in LABELS if c in classes]
    names = [n for n, _, _ in runs]

    def solo_top1(solo, c):
        return solo["per_class"].get(c, {}).get("top1_accuracy") if solo else None

    def recall(mix, c):
        return mix["recall_at_k"]["per_class"].get(c) if mix else None

    def seg(mix, c, k):
        return mix["segment"]["per_class"].get(c, {}).get(k) if mix else None
    lines = ["Each column group: the held-out source (its model never saw it). Solo "
             "top-1: share of the class's solo clips whose highest mean-pooled (calibrated) "
             "score is the class; recall@k: share of the mixture clips containing the class "
             "where it is among the k highest clip scores (k = classes present); "
             "macro = mean over classes, mixtures = mean over clips with >= 2 classes.\n",
             "| class | " + " | ".join(f"{n}: solo top-1 | {n}: recall@k" for n in names)
             + " | mean solo top-1 | mean recall@k |",
             "|---|" + "---|" * (2 * len(runs) + 2)]
    for c in classes:
        tops = [solo_top1(s_, c) for _, s_, _ in runs]
        recs = [recall(m_, c) for _, _, m_ in runs]
        lines.append(f"| {c} | " + " | ".join(f"{f3(t)} | {f3(r)}" for t, r in zip(tops, recs))
                     + f" | {f3(nanmean(tops))} | {f3(nanmean(recs))} |")
    tops = [s_["macro_top1"] if s_ else None for _, s_, _ in runs]
    recs = [m_["recall_at_k"]["macro"] if m_ else None for _, _, m_ in runs]
    lines.append("| **macro** | " + " | ".join(f"**{f3(t)}** | **{f3(r)}**"
                                              for t, r in zip(tops, recs))
                 + f" | **{f3(nanmean(tops))}** | **{f3(nanmean(recs))}** |")
    micro = [s_["micro_top1"] if s_ else None for _, s_, _ in runs]
    mixes = [m_["recall_at_k"]["mixtures_mean"] if m_ else None for _, _, m_ in runs]
    lines.append("| clips: solo micro / recall@k over mixtures | " + " | ".join(
        f"{f3(t)} | {f3(r)}" for t, r in zip(micro, mixes))
        + f" | {f3(nanmean(micro))} | {f3(nanmean(mixes))} |")
    lines += ["", "Segment level on the mixture sets: AP, and F1 at the calibrated "
              "thresholds (0.5 after calibration).\n",
              "| class | " + " | ".join(f"{n}: seg AP | {n}: seg F1" for n in names)
              + " | mean AP | mean F1 |", "|---|" + "---|" * (2 * len(runs) + 2)]
    for c in classes:
        aps = [seg(m_, c, "ap") for _, _, m_ in runs]
        f1s = [seg(m_, c, "f1") for _, _, m_ in runs]
        lines.append(f"| {c} | " + " | ".join(f"{f3(a_)} | {f3(b_)}" for a_, b_ in zip(aps, f1s))
                     + f" | {f3(nanmean(aps))} | {f3(nanmean(f1s))} |")
    aps = [m_["segment"]["mAP"] if m_ else None for _, _, m_ in runs]
    f1s = [m_["segment"]["macro_F1"] if m_ else None for _, _, m_ in runs]
    lines.append("| **macro** | " + " | ".join(f"**{f3(a_)}** | **{f3(b_)}**"
                                              for a_, b_ in zip(aps, f1s))
                 + f" | **{f3(nanmean(aps))}** | **{f3(nanmean(f1s))}** |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="training checkpoint (train.py)")
    ap.add_argument("--sets", nargs="*", default=[], help="mixture sets: name=path.npz")
    ap.add_argument("--solo", nargs="*", default=[], help="solo sets: name=path.npz")
    ap.add_argument("--calibration", default="", help="calibration.json (calibrate.py)")
    ap.add_argument("--save-scores", default="",
                    help="folder: write <name>.npz with the segment logits, targets, masks")
    ap.add_argument("--combine", nargs="*", default=[],
                    help="name=eval.json per held-out source: write the LOFO table only")
    ap.add_argument("--only-synth", default="",
                    help="comma-separated synthesiser names or family prefixes: evaluate only "
                         "clips with a part rendered by them (leave-one-synthesiser-out)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    ap.add_argument("--markdown", default="")
    a = ap.parse_args()
    if a.combine:
        md = combine(a.combine)
        print(md)
        if a.markdown:
            open(a.markdown, "w").write(md)
        return
    if not a.model or not a.out:
        ap.error("--model and --out are required (unless --combine)")
    torch.set_num_threads(a.threads)
    model, ck = load_model(a.model)
    supported = supported_classes(ck)
    scale, bias = load_calibration(a.calibration)
    results = {"model": a.model, "calibration": a.calibration or None,
               "supported": [LABELS[k] for k in supported], "sets": {}, "solo": {}}
    if a.save_scores:
        os.makedirs(a.save_scores, exist_ok=True)

    def scores(name, path):
        sc = segment_scores(model, path, [n for n in a.only_synth.split(",") if n])
        if a.save_scores:
            save_scores(os.path.join(a.save_scores, name.replace(" ", "_").replace("/", "_")
                                     + ".npz"), sc)
        return sc
    for spec in a.sets:
        name, path = spec.split("=", 1)
        r = results["sets"][name] = evaluate_set(scores(name, path), supported, scale, bias)
        print(f"{name}: segment mAP {f3(r['segment']['mAP'])} macro F1 "
              f"{f3(r['segment']['macro_F1'])} | clip mAP {f3(r['clip']['mAP'])} | recall@k "
              f"mixtures {f3(r['recall_at_k']['mixtures_mean'])} all "
              f"{f3(r['recall_at_k']['mean'])} ({r['segments_per_s']:.0f} seg/s)", flush=True)
    for spec in a.solo:
        name, path = spec.split("=", 1)
        r = results["solo"][name] = evaluate_solo(scores(name, path), supported, scale, bias)
        print(f"{name}: solo top-1 macro {f3(r['macro_top1'])} micro {f3(r['micro_top1'])}",
              {k: round(v["top1_accuracy"], 3) for k, v in r["per_class"].items()}, flush=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(results))


if __name__ == "__main__":
    main()
