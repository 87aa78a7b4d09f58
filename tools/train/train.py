#!/usr/bin/python3
"""Train the student on synthetic data sets (tools/synth/build_dataset.py).

Each step draws random 97-frame crops (1 s, any frame offset) from random
clips, builds per-segment multi-label targets from the per-frame activity,
and augments in the feature domain:
  - mixing: with probability --p-mix a crop is summed with a crop from
    another clip in the power (not log) domain at a random relative gain,
    (+-6.5 dB relative gain) and the targets are OR-ed: new instrument
    combinations for free;
  - SpecAugment-style masks: one frequency band (up to 8 mel bands) and one
    time span (up to 12 frames) set to the minimum value, each with p = 0.5;
  - level shift: +-1.5 natural-log units (+-6.5 dB) added to the crop.
Loss: masked binary cross-entropy (segments where a class only just starts or
ends are ignored for that class). AdamW, warm-up + cosine learning rate (over steps, or over wall time with
--time-budget).

Teacher regularisation (Embeddings as Teachers, Ding and Lerch 2023):
--teacher-embeddings DIR (the output folder of `audiotag bulk
--embeddings=segments` with a teacher model, over the WAVs that
build_dataset.py --save-wav wrote for the training sets) and
--teacher-weight LAMBDA train with

    (1 - lambda) * BCE + lambda * (1 - dCor(student embedding, teacher embedding))

dCor: bias-corrected distance correlation over the batch
(distance_correlation.py) between the student's 256-d embedding (penultimate
layer) and the frozen teacher embedding of the same 1 s span, pooled from the
teacher's segments by overlap (teacher_embeddings.py). Crops mixed with
another clip, and crops of clips the teacher did not embed, are left out of
the dCor term.
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import frontend
from distance_correlation import dcor_loss
from teacher_embeddings import TeacherEmbeddings
from model import Student, n_params


def power_of(x):
    return np.exp(x * frontend.NORM_STD + frontend.NORM_MEAN)


def log_of(p):
    return (np.log(p) - frontend.NORM_MEAN) / frontend.NORM_STD


class Sampler:
    def __init__(self, feats, roll, offsets, rng, p_mix):
        self.feats, self.roll, self.offsets, self.rng = feats, roll, offsets, rng
        self.T = frontend.SEGMENT_FRAMES
        lengths = np.diff(offsets) - self.T + 1
        self.clips = np.nonzero(lengths > 0)[0]
        self.weights = lengths[self.clips] / lengths[self.clips].sum()
        self.p_mix = p_mix

    def crop(self):
        c = self.clips[self.rng.choice(len(self.clips), p=self.weights)]
        a, b = int(self.offsets[c]), int(self.offsets[c + 1])
        s = int(self.rng.integers(a, b - self.T + 1))
        self.last = (int(c), s - a)  # clip, start frame inside the clip
        return self.feats[s:s + self.T].astype(np.float32), self.roll[s:s + self.T]

    def batch(self, n):
        xs, ts, ms = [], [], []
        self.where = []  # per item: (clip, start frame) or None when mixed
        for _ in range(n):
            x, r = self.crop()
            self.where.append(self.last)
            if self.rng.random() < self.p_mix:
                self.where[-1] = None
                x2, r2 = self.crop()
                # relative gain +-1.5 natural-log units (+-6.5 dB)
                g = float(self.rng.uniform(-1.5, 1.5)) / frontend.NORM_STD
                p = power_of(x) + power_of(x2 + g)
                x = log_of(p).astype(np.float32)
                r = r | r2
            t, m = data.segment_targets(r)
            if self.rng.random() < 0.5:
                w = int(self.rng.integers(1, 9))
                f0 = int(self.rng.integers(0, x.shape[1] - w))
                x[:, f0:f0 + w] = x.min()
            if self.rng.random() < 0.5:
                w = int(self.rng.integers(1, 13))
                t0 = int(self.rng.integers(0, x.shape[0] - w))
                x[t0:t0 + w, :] = x.min()
            x = x + float(self.rng.uniform(-1.5, 1.5)) / frontend.NORM_STD
            xs.append(x)
            ts.append(t)
            ms.append(m)
        return (torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ts)),
                torch.from_numpy(np.stack(ms)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2000,
                    help="number of steps (upper bound when --time-budget is set)")
    ap.add_argument("--time-budget", type=float, default=0,
                    help="seconds: the learning-rate schedule follows elapsed time and "
                         "training stops when the budget is spent (for a shared machine)")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--p-mix", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--widths", default="16,32,64,128")
    ap.add_argument("--teacher-embeddings", default="",
                    help="output folder of `audiotag bulk --embeddings=segments` with a teacher")
    ap.add_argument("--teacher-output", default="",
                    help="<model>__<output> folder to use when the bulk output has several")
    ap.add_argument("--teacher-weight", type=float, default=0.0,
                    help="lambda: (1 - lambda) * BCE + lambda * (1 - dCor)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    feats, roll, offsets, metas = data.load(a.train)
    print(f"train: {len(metas)} clips, {feats.shape[0]} frames "
          f"({feats.shape[0] * frontend.HOP_LENGTH / frontend.SAMPLE_RATE / 60:.1f} min)",
          flush=True)
    pos = roll.mean(axis=0)
    print("frame-level class occupancy:", " ".join(f"{p:.2f}" for p in pos), flush=True)
    widths = tuple(int(w) for w in a.widths.split(","))
    model = Student(widths)
    print(f"model: {n_params(model)} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)

    def lr_at(frac):  # linear warm-up over 5 %, then cosine to 1 % of the peak
        if frac < 0.05:
            return a.lr * (0.1 + 0.9 * frac / 0.05)
        f = min(1.0, (frac - 0.05) / 0.95)
        return a.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * f)))
    sampler = Sampler(feats, roll, offsets, rng, a.p_mix)
    teacher, clip_track = None, []
    if a.teacher_embeddings:
        teacher = TeacherEmbeddings(a.teacher_embeddings, a.teacher_output or None)
        clip_track = [teacher.lookup(m.get("wav")) for m in metas]
        n_found = sum(t is not None for t in clip_track)
        print(f"teacher {teacher.name}: {len(teacher.tracks)} tracks, dim {teacher.dim}; "
              f"{n_found}/{len(metas)} training clips have teacher embeddings, "
              f"lambda {a.teacher_weight}", flush=True)
        if n_found == 0:
            raise SystemExit("no training clip matches a teacher track id: render the "
                             "training sets with build_dataset.py --save-wav DIR and run "
                             "audiotag bulk --input_dir=DIR")
    seg_seconds = frontend.SEGMENT_SAMPLES / frontend.SAMPLE_RATE
    frame_seconds = frontend.HOP_LENGTH / frontend.SAMPLE_RATE

    def teacher_targets():
        """(indices into the batch, teacher embeddings [k, dim]) for the crops
        that have a teacher target."""
        idx, rows = [], []
        for i, w in enumerate(sampler.where):
            if w is None or clip_track[w[0]] is None:
                continue
            t0 = w[1] * frame_seconds
            e = teacher.pooled(clip_track[w[0]], t0, t0 + seg_seconds)
            if e is not None:
                idx.append(i)
                rows.append(e)
        return idx, (torch.from_numpy(np.stack(rows)) if rows else None)
    lam = a.teacher_weight if teacher is not None else 0.0
    run_dcor = None
    model.train()
    t0 = time.time()
    run = 0.0
    step = 0
    while step < a.steps:
        el = time.time() - t0
        frac = el / a.time_budget if a.time_budget > 0 else step / a.steps
        if frac >= 1.0:
            break
        step += 1
        lr = lr_at(frac)
        for g in opt.param_groups:
            g["lr"] = lr
        x, t, m = sampler.batch(a.batch)
        out = model(x)
        logits = out["logits"]
        loss = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * m).sum() \
            / m.sum().clamp(min=1)
        if lam > 0:
            idx, target = teacher_targets()
            loss = (1 - lam) * loss
            if len(idx) >= 4:  # the bias-corrected dCor needs 4 samples
                reg = dcor_loss(out["embedding"][idx], target)
                loss = loss + lam * reg
                d = 1 - reg.item()
                run_dcor = d if run_dcor is None else 0.98 * run_dcor + 0.02 * d
        opt.zero_grad()
        loss.backward()
        opt.step()
        run = 0.98 * run + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            el = time.time() - t0
            eta = (a.time_budget - el if a.time_budget > 0 else el / step * (a.steps - step))
            dc = f" dcor {run_dcor:.3f}" if run_dcor is not None else ""
            print(f"step {step} loss {run:.4f}{dc} lr {lr:.2e} {el:.0f}s "
                  f"({step * a.batch / el:.1f} seg/s, eta {eta:.0f}s)", flush=True)
        if step % 500 == 0:
            torch.save({"state": model.state_dict(), "widths": widths, "step": step}, a.out)
    torch.save({"state": model.state_dict(), "widths": widths, "step": step,
                "train_sets": a.train, "train_seconds": time.time() - t0,
                "teacher": {"embeddings": a.teacher_embeddings, "name": teacher.name,
                            "weight": lam, "final_dcor": run_dcor} if teacher else None},
               a.out)
    if run_dcor is not None:
        print(f"final running dCor(student embedding, teacher) {run_dcor:.3f}", flush=True)
    print(f"saved {a.out} after {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
