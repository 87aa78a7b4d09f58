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
"""
import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import data
import frontend
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
        return self.feats[s:s + self.T].astype(np.float32), self.roll[s:s + self.T]

    def batch(self, n):
        xs, ts, ms = [], [], []
        for _ in range(n):
            x, r = self.crop()
            if self.rng.random() < self.p_mix:
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
        logits = model(x)["logits"]
        loss = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * m).sum() \
            / m.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run = 0.98 * run + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 50 == 0:
            el = time.time() - t0
            eta = (a.time_budget - el if a.time_budget > 0 else el / step * (a.steps - step))
            print(f"step {step} loss {run:.4f} lr {lr:.2e} {el:.0f}s "
                  f"({step * a.batch / el:.1f} seg/s, eta {eta:.0f}s)", flush=True)
        if step % 500 == 0:
            torch.save({"state": model.state_dict(), "widths": widths, "step": step}, a.out)
    torch.save({"state": model.state_dict(), "widths": widths, "step": step,
                "train_sets": a.train, "train_seconds": time.time() - t0}, a.out)
    print(f"saved {a.out} after {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
