#!/usr/bin/python3
"""Train the student on synthetic data sets (tools/synth/build_dataset.py).

Each step draws random 97-frame examples (1 s, any frame offset), builds
per-segment multi-label targets from the per-frame activity, and augments in
the feature domain (class Sampler):
  - stems mixed on the fly (--stems: solo clip sets, build_dataset.py
    --solo): an example is a mixture of n crops of n different classes, n in
    1..4 with probabilities --mix-counts (default 0.3, 0.3, 0.25, 0.15), each
    crop from a random stem of its class (classes drawn uniformly, so every
    class is equally frequent) at a gain uniform in [-12, 0] dB (--gain-db),
    summed on mel power (not log), targets OR-ed: the same stems make many
    mixtures. With both --train and --stems, --p-stems (default 0.75) of the
    examples are stem mixtures and the rest crops of the multi-part clips;
  - multi-part clips (--train): with probability --p-mix a crop is summed
    with a crop from another clip on mel power at +-6.5 dB relative gain and
    the targets are OR-ed;
  - random colourations against the sound bank's fingerprint (--p-eq 0.8,
    --eq-db 6): a smooth random gain curve over the mel bands (Legendre
    polynomial P1..P3 with peak uniform in [0, 6] dB plus 0-2 Gaussian bumps
    of +-6 dB, clipped to +-9 dB), drawn independently for each stem / clip
    crop and once more for the whole example (--p-eq 0 turns them off);
  - level shift: uniform in +-6.5 dB (--level-db) on mel power;
  - SpecAugment-style masks: one frequency band (up to 8 mel bands) and one
    time span (up to 12 frames) set to the minimum value, each with p = 0.5.
Loss: masked binary cross-entropy (segments where a class only just starts or
ends are ignored for that class). AdamW, warm-up + cosine learning rate (over
steps, or over wall time with --time-budget).
The checkpoint records the active frames per class over all training data
(class_frames): export.py marks classes with none as unsupported.

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
import music_labels
from distance_correlation import dcor_loss
from teacher_embeddings import TeacherEmbeddings
from model import Student, n_params


DB_TO_LN = np.log(10.0) / 10.0  # power ratio in dB -> natural-log units


def power_of(x):
    """Normalised log-mel (frontend.py: (ln(mel + LOG_OFFSET) - NORM_MEAN) /
    NORM_STD) -> mel power WITHOUT the log offset, clamped at 0 (float16
    storage rounds silence slightly below the offset)."""
    p = np.exp(x.astype(np.float32) * frontend.NORM_STD + frontend.NORM_MEAN)
    return np.maximum(p - frontend.LOG_OFFSET, 0.0)


def log_of(p):
    """Mel power (no offset) -> normalised log-mel, float32: the inverse of
    power_of, with the front-end's log offset added back."""
    return ((np.log(p + frontend.LOG_OFFSET) - frontend.NORM_MEAN)
            / frontend.NORM_STD).astype(np.float32)


def legendre_basis(n_bands, order):
    """[order, n_bands] Legendre polynomials P_1..P_order on [-1, 1] over the
    mel bands (P_0, a plain gain, is left out: gains are drawn separately)."""
    z = np.linspace(-1.0, 1.0, n_bands)
    return np.stack([np.polynomial.legendre.Legendre.basis(k)(z) for k in range(1, order + 1)])


class Colouration:
    """Random smooth spectral colourations over the mel bands, in dB (power):
    a random low-order polynomial (Legendre P_1..P_3: tilt, bow, S-shape)
    scaled so that its peak |value| is uniform in [0, eq_db], plus 0-2
    Gaussian bumps (centre: any band, sigma 1.5-8 bands, height uniform in
    [-eq_db, +eq_db]); the sum is clipped to +-1.5 eq_db. A stand-in for the
    fingerprint of a sound bank, a microphone or a room: applied as a gain
    per mel band (multiplying the mel power), i.e. added in the log domain."""

    def __init__(self, rng, eq_db, n_bands=frontend.N_MELS, order=3):
        self.rng, self.eq_db = rng, eq_db
        self.basis = legendre_basis(n_bands, order)
        self.bands = np.arange(n_bands, dtype=np.float64)

    def curve_db(self):
        """[n_bands] float64 gains in dB."""
        r, e = self.rng, self.eq_db
        c = r.uniform(-1.0, 1.0, len(self.basis)) / np.arange(1, len(self.basis) + 1)
        poly = c @ self.basis
        poly *= r.uniform(0.0, e) / max(np.abs(poly).max(), 1e-6)
        bumps = np.zeros_like(self.bands)
        for _ in range(int(r.integers(0, 3))):
            mu, sigma = r.uniform(0, len(self.bands) - 1), r.uniform(1.5, 8.0)
            bumps += r.uniform(-e, e) * np.exp(-0.5 * ((self.bands - mu) / sigma) ** 2)
        return np.clip(poly + bumps, -1.5 * e, 1.5 * e)

    def gain(self):
        """[n_bands] float32 power factors 10^(curve_db / 10)."""
        return np.exp(self.curve_db() * DB_TO_LN).astype(np.float32)


def parse_counts(spec):
    """"w1,w2,w3,w4" -> probabilities of 1, 2, 3, 4 instruments per stem mixture."""
    w = np.array([float(v) for v in spec.split(",")], dtype=np.float64)
    if len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"bad --mix-counts {spec!r}")
    return w / w.sum()


class Sampler:
    """Random 1 s training examples with targets and masks.

    Two sources, either or both:
      clips  (--train): crops of multi-part clips as rendered; with
             probability p_mix summed with a crop of another clip;
      stems  (--stems): solo clips (one instrument each, build_dataset.py
             --solo); an example is a mixture of n crops of n different
             classes, n drawn from mix_counts (probabilities of 1..4), each
             crop from a random stem of its class at a random gain uniform in
             [-gain_db, 0] dB (power) and with its own random colouration.
    p_stems: probability that an example comes from the stems when both are
    given. Summing is done on mel power (power_of/log_of), the targets are
    the OR of the parts' frame rolls. Every example then gets a global
    colouration (probability p_eq), a level shift uniform in +-level_db,
    and the SpecAugment-style masks (one band of up to 8 mel bands, one span
    of up to 12 frames, each with p = 0.5).
    clip_keep: optional bool per clip of the multi-part data (False: never
    drawn). Stems whose class is None are never drawn.
    `where` after batch(): per item (clip, start frame) of an unmixed clip
    crop (for the teacher regulariser), else None.
    """

    def __init__(self, feats, roll, offsets, rng, p_mix, clip_keep=None, stems=None,
                 p_stems=0.0, mix_counts=(1.0,), gain_db=12.0, p_eq=0.0, eq_db=6.0,
                 level_db=6.5):
        self.rng = rng
        self.T = frontend.SEGMENT_FRAMES
        self.p_mix, self.gain_db, self.p_eq, self.level_db = p_mix, gain_db, p_eq, level_db
        self.col = Colouration(rng, eq_db)
        self.clips = None
        if feats is not None and len(offsets) > 1:
            self.feats, self.roll, self.offsets = feats, roll, offsets
            lengths = np.diff(offsets) - self.T + 1
            if clip_keep is not None:
                lengths = np.where(clip_keep, lengths, 0)
            self.clips = np.nonzero(lengths > 0)[0]
            self.weights = lengths[self.clips] / lengths[self.clips].sum()
        self.stems = None
        if stems is not None:
            sf, sr, so, classes = stems
            lengths = np.diff(so) - self.T + 1
            self.stems = (sf, sr, so)
            self.stem_classes = sorted({c for c, n in zip(classes, lengths)
                                        if c is not None and n > 0})
            self.by_class = {c: np.array([i for i, (k, n) in enumerate(zip(classes, lengths))
                                          if k == c and n > 0]) for c in self.stem_classes}
        self.p_stems = (p_stems if (self.stems and self.clips is not None)
                        else (1.0 if self.stems else 0.0))
        self.mix_counts = np.asarray(mix_counts, dtype=np.float64)
        if self.clips is None and self.stems is None:
            raise ValueError("no training data: give clips, stems or both")

    def _crop_from(self, feats, roll, offsets, c):
        a, b = int(offsets[c]), int(offsets[c + 1])
        s = int(self.rng.integers(a, b - self.T + 1))
        return feats[s:s + self.T], roll[s:s + self.T], s - a

    def crop(self):
        c = self.clips[self.rng.choice(len(self.clips), p=self.weights)]
        x, r, s = self._crop_from(self.feats, self.roll, self.offsets, c)
        self.last = (int(c), s)  # clip, start frame inside the clip
        return x.astype(np.float32), r

    def _colour(self, p):
        return p * self.col.gain()[None, :] if self.rng.random() < self.p_eq else p

    def stem_mixture(self):
        """(mel power [T, F], roll [T, 20]) of 1-4 stems of distinct classes."""
        n = int(self.rng.choice(len(self.mix_counts), p=self.mix_counts)) + 1
        n = min(n, len(self.stem_classes))
        classes = self.rng.choice(len(self.stem_classes), size=n, replace=False)
        sf, sr, so = self.stems
        p, r = None, None
        for k in classes:
            pool = self.by_class[self.stem_classes[k]]
            x, rk, _ = self._crop_from(sf, sr, so, int(pool[self.rng.integers(len(pool))]))
            g = np.float32(np.exp(-self.rng.uniform(0.0, self.gain_db) * DB_TO_LN))
            pk = self._colour(power_of(x)) * g
            p, r = (pk, rk.copy()) if p is None else (p + pk, r | rk)
        return p, r

    def example(self):
        """One augmented example: (x [T, F] float32, roll [T, 20])."""
        if self.rng.random() < self.p_stems:
            self.where.append(None)
            p, r = self.stem_mixture()
        else:
            x, r = self.crop()
            self.where.append(self.last)
            p = self._colour(power_of(x))
            if self.rng.random() < self.p_mix:
                self.where[-1] = None
                x2, r2 = self.crop()
                # relative gain +-6.5 dB
                g = np.float32(np.exp(self.rng.uniform(-6.5, 6.5) * DB_TO_LN))
                p = p + self._colour(power_of(x2)) * g
                r = r | r2
        p = self._colour(p)
        p = p * np.float32(np.exp(self.rng.uniform(-self.level_db, self.level_db) * DB_TO_LN))
        return log_of(p), r

    def batch(self, n):
        """n examples: x [n, 1, T, F], target [n, 20], mask [n, 20] (torch float32)."""
        xs, ts, ms = [], [], []
        self.where = []  # per item: (clip, start frame) or None when mixed
        for _ in range(n):
            x, r = self.example()
            t, m = data.segment_targets(r)
            if self.rng.random() < 0.5:
                w = int(self.rng.integers(1, 9))
                f0 = int(self.rng.integers(0, x.shape[1] - w))
                x[:, f0:f0 + w] = x.min()
            if self.rng.random() < 0.5:
                w = int(self.rng.integers(1, 13))
                t0 = int(self.rng.integers(0, x.shape[0] - w))
                x[t0:t0 + w, :] = x.min()
            xs.append(x)
            ts.append(t)
            ms.append(m)
        return (torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ts)),
                torch.from_numpy(np.stack(ms)))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", nargs="*", default=[],
                    help="multi-part clip sets (build_dataset.py without --solo)")
    ap.add_argument("--stems", nargs="*", default=[],
                    help="solo clip sets (build_dataset.py --solo): mixed on the fly; clips "
                         "with more than one part are left out")
    ap.add_argument("--p-stems", type=float, default=0.75,
                    help="probability that an example is a stem mixture when both --train "
                         "and --stems are given")
    ap.add_argument("--mix-counts", default="0.3,0.3,0.25,0.15",
                    help="relative weights of 1, 2, 3, 4 instruments per stem mixture")
    ap.add_argument("--gain-db", type=float, default=12.0,
                    help="each stem's gain is uniform in [-gain_db, 0] dB")
    ap.add_argument("--p-eq", type=float, default=0.8,
                    help="probability of a random colouration, per stem/clip crop and "
                         "again per example (0 = off)")
    ap.add_argument("--eq-db", type=float, default=6.0,
                    help="peak of the random polynomial colouration and of each bump, dB")
    ap.add_argument("--level-db", type=float, default=6.5,
                    help="per-example level shift uniform in +-level_db dB")
    ap.add_argument("--exclude-synth", default="",
                    help="comma-separated synthesiser names or family prefixes (ks, bowed, "
                         "...): clips with a part rendered by them are left out "
                         "(leave-one-synthesiser-out)")
    ap.add_argument("--input-norm", default="none", choices=["none", "tilt"],
                    help="in-network input normalisation (model.py): tilt removes the "
                         "segment's mean spectral slope and curvature")
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
    if not a.train and not a.stems:
        raise SystemExit("give --train, --stems or both")
    minutes = lambda f: f.shape[0] * frontend.HOP_LENGTH / frontend.SAMPLE_RATE / 60  # noqa
    class_frames = np.zeros(len(music_labels.LABELS), dtype=np.int64)
    feats, roll, offsets, metas = None, None, np.zeros(1, np.int64), []
    exclude = [n for n in a.exclude_synth.split(",") if n]
    clip_keep = None
    if a.train:
        feats, roll, offsets, metas = data.load(a.train)
        if exclude:
            clip_keep = np.array([not data.synth_match(m, exclude) for m in metas])
            print(f"--exclude-synth: {int((~clip_keep).sum())} clips left out", flush=True)
            for c in np.nonzero(~clip_keep)[0]:
                roll[offsets[c]:offsets[c + 1]] = 0  # not counted in class_frames
        class_frames += roll.sum(axis=0, dtype=np.int64)
        print(f"clips: {len(metas)} clips, {feats.shape[0]} frames ({minutes(feats):.1f} min)",
              flush=True)
        print("frame-level class occupancy:", " ".join(f"{p:.2f}" for p in roll.mean(axis=0)),
              flush=True)
    stems = None
    if a.stems:
        sf, sr, so, smetas = data.load(a.stems)
        classes = data.stem_classes(smetas)
        if exclude:
            classes = [None if data.synth_match(m, exclude) else k
                       for m, k in zip(smetas, classes)]
        keep = np.zeros(sf.shape[0], dtype=bool)
        for c, k in enumerate(classes):
            if k is not None:
                keep[so[c]:so[c + 1]] = True
        class_frames += sr[keep].sum(axis=0, dtype=np.int64)
        stems = (sf, sr, so, classes)
        counts = {k: classes.count(k) for k in sorted({k for k in classes if k})}
        print(f"stems: {len(smetas)} clips ({sum(k is None for k in classes)} left out: not "
              f"one part), {sf.shape[0]} frames ({minutes(sf):.1f} min); per class: "
              + " ".join(f"{k} {n}" for k, n in counts.items()), flush=True)
    trained = [music_labels.LABELS[k] for k in np.nonzero(class_frames > 0)[0]]
    untrained = [n for n in music_labels.LABELS if n not in trained]
    print(f"classes with training examples: {len(trained)}; without (exported as "
          f"unsupported): {', '.join(untrained) or 'none'}", flush=True)
    widths = tuple(int(w) for w in a.widths.split(","))
    model = Student(widths, input_norm=a.input_norm)
    print(f"model: {n_params(model)} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)

    def lr_at(frac):  # linear warm-up over 5 %, then cosine to 1 % of the peak
        if frac < 0.05:
            return a.lr * (0.1 + 0.9 * frac / 0.05)
        f = min(1.0, (frac - 0.05) / 0.95)
        return a.lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * f)))
    sampler = Sampler(feats, roll, offsets, rng, a.p_mix, clip_keep=clip_keep,
                      stems=stems, p_stems=a.p_stems,
                      mix_counts=parse_counts(a.mix_counts), gain_db=a.gain_db, p_eq=a.p_eq,
                      eq_db=a.eq_db, level_db=a.level_db)
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
            torch.save({"state": model.state_dict(), "widths": widths, "step": step,
                        "input_norm": a.input_norm, "class_frames": class_frames.tolist()},
                       a.out)
    torch.save({"state": model.state_dict(), "widths": widths, "step": step,
                "input_norm": a.input_norm,
                # active frames per class over all training data: export.py marks the
                # classes with none as unsupported
                "class_frames": class_frames.tolist(), "labels": music_labels.LABELS,
                "args": vars(a),
                "train_sets": a.train, "stem_sets": a.stems,
                "train_seconds": time.time() - t0,
                "teacher": {"embeddings": a.teacher_embeddings, "name": teacher.name,
                            "weight": lam, "final_dcor": run_dcor} if teacher else None},
               a.out)
    if run_dcor is not None:
        print(f"final running dCor(student embedding, teacher) {run_dcor:.3f}", flush=True)
    print(f"saved {a.out} after {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
