#!/usr/bin/env python3
"""Exports a PaSST-S checkpoint to an audiotag model folder.

PaSST-S (Koutini et al., "Efficient Training of Audio Transformers with
Patchout", kkoutini/PaSST): a ViT-base (12 blocks, 768-d, 12 heads) on a
(B, 1, 128, 998) log-mel, 16x16 patches at stride 10 (a 12 x 99 patch grid),
cls + distillation tokens, separate frequency and time positional
embeddings. In eval mode there is no patchout. The network returns
``(logits, embedding)``: the class logits (no sigmoid; audiotag applies one if
the config says so) and the 768-d mean of the cls and distillation token
outputs, which is also what the classifier head sees.

Checkpoints (downloaded by the user from the kkoutini/PaSST GitHub releases):
  passt-s-f128-p16-s10-ap.476-swa.pt          AudioSet, 527 classes
  openmic-passt-s-f128-10sec-p16-s10-ap.85.pt OpenMIC-2018, 20 classes
Their keys: patch_embed.proj.{weight,bias}, cls_token, dist_token,
new_pos_embed (1,2,768), freq_new_pos_embed (1,768,12,1),
time_new_pos_embed (1,768,1,99), blocks.N.*, norm.*, head.0 (LayerNorm),
head.1 (Linear 768->classes), head_dist (Linear, unused at inference).

Usage (Debian's python3-torch):
  /usr/bin/python3 tools/export/export.py passt CHECKPOINT --out DIR \
      [--labels class_labels_indices.csv] [--activation sigmoid|none]
  /usr/bin/python3 tools/export/passt.py ...            (same arguments)
  /usr/bin/python3 tools/export/passt.py --make-random-checkpoint PATH \
      [--classes 527|20] [--depth N] [--seed S]        (fake weights, tests)
"""

import argparse
import os
import sys
from typing import Dict, Tuple

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import vit_common as vc  # noqa: E402

SAMPLE_RATE = 32000
SEGMENT_SAMPLES = 10 * SAMPLE_RATE
N_MELS = 128
N_FRAMES = 998
PATCH = 16
STRIDE = 10

OPENMIC_LABELS = [
    "accordion", "banjo", "bass", "cello", "clarinet", "cymbals", "drums",
    "flute", "guitar", "mallet_percussion", "mandolin", "organ", "piano",
    "saxophone", "synthesizer", "trombone", "trumpet", "ukulele", "violin",
    "voice",
]

def input_config():
    """docs/front_ends.md, "PaSST-S (32 kHz)": AugmentMelSTFT in eval mode."""
    pb = common.config_pb2()
    return pb.InputConfig(
        sample_rate=SAMPLE_RATE,
        log_mel=pb.LogMelFrontEnd(
            n_fft=1024, win_length=800, hop_length=320, window=pb.WINDOW_HANN_SYMMETRIC, center=True,
            pad_mode=pb.PAD_REFLECT, pre_emphasis=0.97, pre_emphasis_mode=pb.PRE_EMPHASIS_WAVEFORM,
            n_mels=N_MELS, f_min=0, f_max=15000, mel_scale=pb.MEL_KALDI, power=2, log=pb.LOG_NATURAL,
            log_offset=1e-5, norm_mean=-4.5, norm_std=5, num_frames=N_FRAMES),
        layout=pb.LAYOUT_BCFT)


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=PATCH, stride=STRIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)  # [B, E, F', T']


class PaSST(nn.Module):
    """PaSST-S at inference: mel [B, 1, 128, T] -> (logits, embedding)."""

    def __init__(self, num_classes: int = 527, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12,
                 grid: Tuple[int, int] = (12, 99)):
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid[0], 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, grid[1]))
        self.blocks = nn.Sequential(*[vc.Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, num_classes))
        # Trained with the distillation token; not used at inference.
        self.head_dist = nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed(x)  # [B, E, F', T']
        b = x.shape[0]
        time_pos = self.time_new_pos_embed
        t = x.shape[3]
        if t <= time_pos.shape[3]:
            time_pos = time_pos[:, :, :, :t]  # eval: the first T' positions
        else:
            x = x[:, :, :, :time_pos.shape[3]]  # longer inputs are cut
        x = x + time_pos + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)  # [B, F'*T', E], frequency-major
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1, :]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:, :]
        x = torch.cat((cls, dist, x), dim=1)
        x = self.blocks(x)
        x = self.norm(x)
        embedding = (x[:, 0] + x[:, 1]) / 2
        return self.head(embedding), embedding


def model_from_state(state: Dict[str, torch.Tensor]) -> PaSST:
    """Builds a PaSST shaped like the checkpoint and loads it strictly."""
    cls = vc.require_key(state, "cls_token")
    head = vc.require_key(state, "head.1.weight")
    freq = vc.require_key(state, "freq_new_pos_embed")
    time = vc.require_key(state, "time_new_pos_embed")
    embed_dim = cls.shape[-1]
    if embed_dim % 64:
        raise common.ExportError(f"embedding size {embed_dim} is not a multiple of 64")
    model = PaSST(num_classes=head.shape[0], embed_dim=embed_dim,
                  depth=vc.count_blocks(state, ""), num_heads=embed_dim // 64,
                  grid=(freq.shape[2], time.shape[3]))
    common.load_state_dict_strict(model, state, "PaSST checkpoint")
    return model.eval()


def make_random_checkpoint(path: str, classes: int, depth: int, seed: int) -> None:
    model = PaSST(num_classes=classes, depth=depth)
    vc.randomize_(model, seed)
    # The released files are plain state dicts (no wrapper, no prefix).
    vc.save_checkpoint(model.state_dict(), path)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote random PaSST checkpoint {path}: {classes} classes, depth "
          f"{depth}, {n} parameters")


def model_config(variant: str, num_classes: int, embed_dim: int, args):
    """(ModelConfig, header) of an exported PaSST-S."""
    pb = common.config_pb2()
    what = ("AudioSet, 527 classes" if variant == "audioset"
            else "OpenMIC-2018, 20 instruments")
    ckpt = os.path.basename(args.checkpoint)
    desc = (f"PaSST-S ({what}) from {ckpt}; 10 s segments at 32 kHz; "
            "exported by tools/export/passt.py")
    hop = int(round(args.hop_seconds * SAMPLE_RATE)) if args.hop_seconds else SEGMENT_SAMPLES
    config = common.model_config(
        description=desc, input=input_config(),
        segment=pb.SegmentConfig(window_samples=SEGMENT_SAMPLES, hop_samples=hop,
                                 last_segment=pb.LAST_SEGMENT_PAD),
        outputs=vc.outputs(num_classes, embed_dim, args.activation), args=args)
    header = ("Written by tools/export/passt.py. The network returns (logits,\n"
              "embedding); audiotag applies the activation to the logits.")
    return config, header


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="export.py passt",
        description="Export a PaSST-S checkpoint (passt-s-f128-p16-s10-ap.476-swa.pt "
                    "or openmic-passt-s-f128-10sec-p16-s10-ap.85.pt) to an "
                    "audiotag model folder.")
    vc.add_export_args(p, "the downloaded .pt file", "10")
    p.add_argument("--labels", help="AudioSet class_labels_indices.csv (527 "
                   "classes) or a text file with one label per line; the "
                   "OpenMIC model gets its 20 labels built in")
    p.add_argument("--variant", choices=["auto", "audioset", "openmic"],
                   default="auto", help="default: from the number of classes")
    p.add_argument("--classes", type=int, default=527,
                   help="with --make-random-checkpoint: 527 or 20")
    return vc.parse_export_args(p, argv)


def run(argv) -> None:
    args = parse_args(argv)
    if args.make_random_checkpoint:
        make_random_checkpoint(args.make_random_checkpoint, args.classes,
                               args.depth, args.seed)
        return
    if not args.checkpoint or not args.out:
        raise common.ExportError("need CHECKPOINT and --out (or --make-random-checkpoint)")
    torch.set_grad_enabled(False)
    model = model_from_state(vc.load_state_dict(args.checkpoint))
    num_classes = model.head[1].out_features
    embed_dim = model.cls_token.shape[-1]
    variant = args.variant
    if variant == "auto":
        variant = "openmic" if num_classes == len(OPENMIC_LABELS) else "audioset"
    if variant == "openmic":
        if num_classes != len(OPENMIC_LABELS):
            raise common.ExportError(f"OpenMIC has 20 classes; the checkpoint has {num_classes}")
        labels = (vc.read_labels(args.labels, num_classes) if args.labels
                  else list(OPENMIC_LABELS))
    else:
        labels = vc.read_labels(args.labels, num_classes)

    example = torch.randn(2, 1, N_MELS, N_FRAMES, generator=torch.Generator().manual_seed(1))
    config, header = model_config(variant, num_classes, embed_dim, args)
    errors = vc.export(args, model, example, config, header, labels)
    common.log(f"wrote {args.out} (PaSST-S {variant}, {num_classes} classes, "
               f"{len(model.blocks)} blocks); TorchScript vs eager max abs error: "
               f"logits {errors['0']:.2e}, embedding {errors['1']:.2e}")


def main(argv=None) -> int:
    return vc.run_main(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
