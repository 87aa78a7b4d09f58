#!/usr/bin/python3
"""Served-model parity of the default model: the per-segment outputs of the
real audiotag-server for tests/data/openmic_student_parity.wav must equal
what tools/train/export.py computed with the exported TorchScript module
(tests/data/openmic_student_parity.json).

Compared, per segment (5: starts 0, 0.5, 1, 1.5 s full, 2 s zero-padded):
  activations (sigmoid of logits): max abs error <= 1e-4
  segment embeddings (256, ReLU):   max abs error <= 1e-3 + 1e-4 * max|ref|
  tags (mean pooling):              max abs error <= 1e-4 against the mean
                                    of the JSON's per-segment probabilities,
                                    the padded last segment weighted by the
                                    share of real audio it holds (0.75), as
                                    docs/api.md specifies for POOLING_MEAN
Tolerances: the server's front-end is float32 C++, the export's is float64
torch; the JSON's own suggestions are 1e-4 (probabilities) / 1e-3 (embedding).

    /usr/bin/python3 tools/train/tests/test_default_model_parity.py --build-dir build-lead
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serving import ROOT, Server, output, result_for  # noqa: E402

PROB_TOL = 1e-4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--repo", default=os.path.join(ROOT, "models"))
    ap.add_argument("--parity", default=os.path.join(ROOT, "tests", "data",
                                                     "openmic_student_parity.json"))
    a = ap.parse_args()
    t0 = time.time()
    ref = json.load(open(a.parity))
    wav = os.path.join(os.path.dirname(a.parity), ref["wav"])
    segs = ref["segments"]
    ref_p = np.array([s["probabilities"] for s in segs])
    ref_e = np.array([s["embedding"] for s in segs])
    with Server(a.build_dir, a.repo, ready_models=[ref["model"]]) as srv:
        resp = srv.analyze(wav, models=[ref["model"]],
                           outputs="tags,activations,segment_embeddings")
    res = result_for(resp, ref["model"])
    errors = []
    if res["num_segments"] != len(segs):
        errors.append(f"num_segments {res['num_segments']} != {len(segs)}")
    act = output(res, "activations")
    labels = act["labels"]
    if labels != ref["labels"]:
        errors.append(f"labels differ: {labels}")
    frames = act["frames"]
    got_p = np.array([f["scores"] for f in frames])
    starts = np.array([f["start_seconds"] for f in frames])
    want_starts = np.array([s["start_sample"] for s in segs]) / ref["sample_rate"]
    if got_p.shape != ref_p.shape or not np.allclose(starts, want_starts):
        errors.append(f"activation frames {got_p.shape} at {starts} != {ref_p.shape} at "
                      f"{want_starts}")
    else:
        err = np.abs(got_p - ref_p).max(axis=1)
        print("activations: max abs error per segment", " ".join(f"{e:.2e}" for e in err))
        if err.max() > PROB_TOL:
            errors.append(f"activations differ by {err.max():.3g} > {PROB_TOL}")
    emb = output(res, "embedding")
    got_e = np.array([s["values"] for s in emb["segments"]])
    if got_e.shape != ref_e.shape:
        errors.append(f"segment embeddings {got_e.shape} != {ref_e.shape}")
    else:
        tol = 1e-3 + 1e-4 * np.abs(ref_e).max()
        err = np.abs(got_e - ref_e).max(axis=1)
        print(f"embeddings: max|ref| {np.abs(ref_e).max():.2f}, max abs error per segment",
              " ".join(f"{e:.2e}" for e in err), f"(tol {tol:.2e})")
        if err.max() > tol:
            errors.append(f"embeddings differ by {err.max():.3g} > {tol:.3g}")
    tags = {t["label"]: t["score"] for t in output(res, "tags")["tags"]}
    n = ref["num_samples"]
    win = 16000  # config.pbtxt segment.window_samples
    w = np.array([min(win, n - s["start_sample"]) / win for s in segs])
    want = (ref_p * w[:, None]).sum(axis=0) / w.sum()
    got = np.array([tags[l] for l in ref["labels"]])
    terr = np.abs(got - want).max()
    print(f"tags (weighted mean of {len(segs)} segments): max abs error {terr:.2e}")
    if terr > PROB_TOL:
        errors.append(f"tags differ from the mean of segment probabilities by {terr:.3g}")
    print(f"runtime {time.time() - t0:.1f} s")
    if errors:
        print("FAILED:\n  " + "\n  ".join(errors))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
