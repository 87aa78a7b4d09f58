"""Teacher embeddings written by `audiotag bulk --embeddings=segments`, aligned
to the student's training segments.

Layout read (docs/bulk.md): <bulk out>/embeddings/<model>__<output>/
index.jsonl ({"id","shard","row","rows","segments":[[start,end],...]} per
track, times in seconds) and shard-NNNNN.npy (float32 [rows, dim]).

Alignment: a student crop of clip c starting at frame f covers
[f * 0.01 s, f * 0.01 s + 1 s) of the clip's audio (the served segment: 16000
samples at 16 kHz, hop 160 samples per frame). Its teacher target is the mean
of the teacher's segment embeddings weighted by how many seconds of each
teacher segment overlap that span. A teacher whose segments are the
student's (1 s, hop 0.5 s, e.g. another model with the same segment config)
gives exactly one matching row for crops at multiples of 50 frames; a teacher
with other timing (VGGish 0.96 s patches, PANNs 10 s windows, OpenL3 0.1 s
hops) is pooled to the student's span. A crop no teacher segment overlaps
has no target and is left out of the regulariser.

Track ids: the bulk id of each clip is matched against the clip's WAV name
from the data set's meta ("wav", written by build_dataset.py --save-wav):
exact id, then the id's basename, then the basename without extension.
"""
import glob
import json
import os

import numpy as np


def find_index(path, output=None):
    """The index.jsonl to read: `path` itself, path/index.jsonl, or the one
    (or the `output`-named) folder under path/embeddings/."""
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(path, "index.jsonl")):
        return os.path.join(path, "index.jsonl")
    found = sorted(glob.glob(os.path.join(path, "embeddings", "*", "index.jsonl")))
    found += sorted(glob.glob(os.path.join(path, "shard-*-of-*", "embeddings", "*",
                                           "index.jsonl")))
    if output:
        found = [f for f in found if os.path.basename(os.path.dirname(f)) == output]
    names = sorted({os.path.basename(os.path.dirname(f)) for f in found})
    if not found:
        raise FileNotFoundError(f"no embeddings/*/index.jsonl under {path}"
                                + (f" for {output}" if output else ""))
    if len(names) > 1:
        raise ValueError(f"{path} holds several embedding outputs {names}: pick one with "
                         f"--teacher-output <model>__<output>")
    return found


class TeacherEmbeddings:
    def __init__(self, path, output=None):
        index_files = find_index(path, output)
        if isinstance(index_files, str):
            index_files = [index_files]
        self.tracks = {}  # id -> (segments [n, 2] float64, rows [n, dim] float32)
        shards = {}
        self.dim = None
        for index in index_files:
            folder = os.path.dirname(index)
            self.name = os.path.basename(folder)
            with open(index) as f:
                for line in f:
                    if not line.strip():
                        continue
                    e = json.loads(line)
                    shard = os.path.join(folder, os.path.basename(e["shard"]))
                    if shard not in shards:
                        shards[shard] = np.load(shard, mmap_mode="r")
                    rows = np.asarray(shards[shard][e["row"]:e["row"] + e["rows"]],
                                      dtype=np.float32)
                    segs = e.get("segments")
                    if segs is None:
                        raise ValueError(f"{index}: no segment times for {e['id']}: run "
                                         "audiotag bulk with --embeddings=segments")
                    segs = np.asarray(segs, dtype=np.float64).reshape(-1, 2)
                    if len(segs) != len(rows):
                        raise ValueError(f"{index}: {e['id']}: {len(rows)} rows but "
                                         f"{len(segs)} segment times")
                    self.tracks[str(e["id"])] = (segs, rows)
                    self.dim = rows.shape[1]
        self._by_base = {}
        for k in self.tracks:
            b = os.path.basename(k)
            self._by_base.setdefault(b, k)
            self._by_base.setdefault(os.path.splitext(b)[0], k)

    def lookup(self, name):
        """The bulk id for a clip's WAV name, or None."""
        if name is None:
            return None
        if name in self.tracks:
            return name
        b = os.path.basename(name)
        return self._by_base.get(b) or self._by_base.get(os.path.splitext(b)[0])

    def pooled(self, track, t0, t1):
        """Overlap-weighted mean of the track's segment rows over [t0, t1),
        or None when no segment overlaps."""
        segs, rows = self.tracks[track]
        ov = np.minimum(segs[:, 1], t1) - np.maximum(segs[:, 0], t0)
        w = np.clip(ov, 0, None)
        if w.sum() <= 1e-9:
            return None
        return (rows * w[:, None]).sum(axis=0) / w.sum()
