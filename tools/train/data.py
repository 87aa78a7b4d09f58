"""Loading data sets written by tools/synth/build_dataset.py and turning
per-frame activity into per-segment targets."""
import json

import numpy as np

import frontend

# A class is a positive for a segment when it sounds in at least MIN_ON
# frames of the segment's 97; absent (0 frames) is a negative; in between
# (it only just starts or ends inside the segment) is ignored: masked out of
# the loss and left out of the metrics for that class.
MIN_ON = 15


def load(paths):
    feats, rolls, offsets, metas = [], [], [0], []
    base = 0
    for p in paths:
        d = np.load(p)
        feats.append(d["feats"])
        rolls.append(d["roll"])
        offsets += list(d["offsets"][1:] + base)
        base += int(d["offsets"][-1])
        metas += json.loads(str(d["meta"]))
    return (np.concatenate(feats), np.concatenate(rolls), np.asarray(offsets, dtype=np.int64),
            metas)


def synth_match(meta, names):
    """True when a part of the clip was rendered by one of the synthesisers
    `names` (build_dataset.py --font synth records each part's "synth"); a
    name matches itself and every synthesiser it is a prefix of up to "_"
    ("ks" matches "ks_guitar_nylon", "ks_banjo", ...)."""
    for p in meta.get("parts", []):
        s = p.get("synth")
        if s and any(s == n or s.startswith(n + "_") for n in names):
            return True
    return False


def stem_classes(metas):
    """Per clip: the class of a one-part clip (build_dataset.py --solo), or
    None for clips with zero or several parts (not usable as a stem)."""
    return [m["parts"][0]["class"] if len(m.get("parts", [])) == 1 else None for m in metas]


def segment_targets(roll_crop):
    """roll_crop [..., frames, 20] -> (target, mask) float32 [..., 20]."""
    count = roll_crop.sum(axis=-2)
    target = (count >= MIN_ON).astype(np.float32)
    mask = ((count >= MIN_ON) | (count == 0)).astype(np.float32)
    return target, mask


def served_segments(feats, roll, offsets):
    """Segments exactly as audiotag serves them (window 1 s, hop 0.5 s, full
    segments only). Returns x [N, 97, 64] float32, target, mask, clip index."""
    T, H = frontend.SEGMENT_FRAMES, frontend.SEGMENT_HOP_FRAMES
    xs, ts, ms, clip = [], [], [], []
    for c in range(len(offsets) - 1):
        a, b = int(offsets[c]), int(offsets[c + 1])
        for s in range(a, b - T + 1, H):
            xs.append(feats[s:s + T])
            t, m = segment_targets(roll[s:s + T])
            ts.append(t)
            ms.append(m)
            clip.append(c)
    return (np.stack(xs).astype(np.float32), np.stack(ts), np.stack(ms),
            np.asarray(clip))
