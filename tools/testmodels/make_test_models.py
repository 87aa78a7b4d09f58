#!/usr/bin/env python3
"""Writes small TorchScript test models into an audiotag model repository.

Each model becomes a folder the way docs/model_repository.md describes it:

    DIR/<name>/config.pbtxt
    DIR/<name>/labels.txt          (models with labelled outputs)
    DIR/<name>/<version>/model.pt

Models:
  identity  16 kHz waveform, 1 s segments. One EMBEDDING output "stats" of
            dim 4: per segment [mean, std, max, min] of the samples (std is
            the population standard deviation), so results are predictable.
  tagger    16 kHz log-mel front-end (n_fft 512, window 400, hop 160, 32 HTK
            bands, ln(x + 0.01)), 1 s segments, a tiny conv net with fixed
            seeded weights returning a Dict[str, Tensor]: TAGS "tags" (5
            labels, sigmoid), frame-wise ACTIVATIONS "activations" [B, T, 5]
            (sigmoid) and EMBEDDING "embedding" (dim 16).
  broken    a valid config whose model.pt is random bytes (load fails). Only
            written when asked for with --models.

Usage (Debian's python3-torch):
  /usr/bin/python3 tools/testmodels/make_test_models.py --out DIR \
      [--models identity,tagger,broken] [--version N]
"""

import argparse
import os
import random
import sys

import torch

LABELS = ["guitar", "drums", "piano", "voice", "strings"]


class Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, samples]
        return torch.stack(
            [x.mean(1), x.std(1, unbiased=False), x.amax(1), x.amin(1)], 1)


class Tagger(torch.nn.Module):
    def __init__(self, n_mels: int, n_classes: int, emb_dim: int):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.frame = torch.nn.Linear(8, n_classes)
        self.clip = torch.nn.Linear(8, n_classes)
        self.emb = torch.nn.Linear(8, emb_dim)
        self.n_mels = n_mels

    def forward(self, x: torch.Tensor):
        # x: [B, T, F] log-mel
        h = torch.relu(self.conv(x.unsqueeze(1)))  # [B, 8, T, F]
        frames = h.mean(3).transpose(1, 2)         # [B, T, 8]
        pooled = frames.mean(1)                    # [B, 8]
        return {
            "tags": self.clip(pooled),
            "activations": self.frame(frames),
            "embedding": self.emb(pooled),
        }


IDENTITY_CONFIG = """\
# Written by tools/testmodels/make_test_models.py.
description: "Test model: per-segment [mean, std, max, min] of the waveform"
input {
  sample_rate: 16000
  waveform {}
}
segment { window_samples: 16000 }
output { name: "stats" kind: EMBEDDING dim: 4 }
batching { max_batch_size: 8 max_queue_delay_us: 2000 }
"""

TAGGER_CONFIG = """\
# Written by tools/testmodels/make_test_models.py.
description: "Test model: a tiny seeded conv net on a log-mel front-end"
input {
  sample_rate: 16000
  log_mel {
    n_fft: 512
    win_length: 400
    hop_length: 160
    window: WINDOW_HANN_PERIODIC
    n_mels: 32
    f_min: 0
    f_max: 8000
    mel_scale: MEL_HTK
    power: 2
    log: LOG_NATURAL
    log_offset: 0.01
  }
  layout: LAYOUT_BTF
}
segment { window_samples: 16000 hop_samples: 16000 }
output {
  name: "tags"
  kind: TAGS
  source: "tags"
  activation: ACTIVATION_SIGMOID
  dim: %(n)d
}
output {
  name: "activations"
  kind: ACTIVATIONS
  source: "activations"
  activation: ACTIVATION_SIGMOID
  dim: %(n)d
}
output { name: "embedding" kind: EMBEDDING source: "embedding" dim: 16 }
batching { max_batch_size: 8 max_queue_delay_us: 2000 }
"""


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def model_path(out, name, version):
    folder = os.path.join(out, name, str(version))
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, "model.pt")


def make_identity(out, version):
    write_text(os.path.join(out, "identity", "config.pbtxt"), IDENTITY_CONFIG)
    torch.jit.script(Identity().eval()).save(
        model_path(out, "identity", version))


def make_tagger(out, version):
    torch.manual_seed(1234)
    net = Tagger(n_mels=32, n_classes=len(LABELS), emb_dim=16).eval()
    write_text(os.path.join(out, "tagger", "config.pbtxt"),
               TAGGER_CONFIG % {"n": len(LABELS)})
    write_text(os.path.join(out, "tagger", "labels.txt"),
               "\n".join(LABELS) + "\n")
    torch.jit.script(net).save(model_path(out, "tagger", version))


def make_broken(out, version):
    write_text(os.path.join(out, "broken", "config.pbtxt"), IDENTITY_CONFIG)
    rng = random.Random(7)
    with open(model_path(out, "broken", version), "wb") as f:
        f.write(bytes(rng.randrange(256) for _ in range(4096)))


MAKERS = {
    "identity": make_identity,
    "tagger": make_tagger,
    "broken": make_broken,
}


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True,
                        help="model repository folder (created if missing)")
    parser.add_argument("--models", default="identity,tagger",
                        help="comma-separated: " + ", ".join(MAKERS))
    parser.add_argument("--version", type=int, default=1,
                        help="version folder to write (default 1)")
    args = parser.parse_args(argv)
    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MAKERS]
    if unknown:
        parser.error("unknown model(s): %s (known: %s)" %
                     (", ".join(unknown), ", ".join(MAKERS)))
    if args.version < 1:
        parser.error("--version must be >= 1")
    os.makedirs(args.out, exist_ok=True)
    for name in names:
        MAKERS[name](args.out, args.version)
        print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
