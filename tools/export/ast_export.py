#!/usr/bin/env python3
"""Exports an AST checkpoint to an audiotag model folder.

AST (Gong et al., "AST: Audio Spectrogram Transformer", YuanGongND/ast): a
DeiT-base-distilled ViT (12 blocks, 768-d, 12 heads) on a (B, 1024, 128)
Kaldi fbank, 16x16 patches with stride 10 on both axes (a 12 x 101 patch
grid), cls + distillation tokens and one learned positional embedding
(1, 2 + 1212, 768). The network returns ``(logits, embedding)``: the
AudioSet logits of ``mlp_head`` (LayerNorm + Linear 768->527; no sigmoid,
audiotag applies one if the config says so) and the 768-d mean of the cls and
distillation token outputs that ``mlp_head`` sees.

Checkpoint (downloaded by the user from the link in YuanGongND/ast's README):
  audioset_10_10_0.4593.pth  a torch.nn.DataParallel state dict, every key
  prefixed 'module.': module.v.patch_embed.proj.{weight,bias},
  module.v.cls_token, module.v.dist_token, module.v.pos_embed,
  module.v.blocks.N.*, module.v.norm.*, module.v.head.* and
  module.v.head_dist.* (the ImageNet heads, unused), module.mlp_head.0
  (LayerNorm), module.mlp_head.1 (Linear 768->527).

Usage (Debian's python3-torch):
  /usr/bin/python3 tools/export/export.py ast CHECKPOINT --out DIR \
      [--labels class_labels_indices.csv] [--activation sigmoid|none]
  /usr/bin/python3 tools/export/ast_export.py ...              (same arguments)
  /usr/bin/python3 tools/export/ast_export.py --make-random-checkpoint PATH \
      [--classes 527] [--depth N] [--seed S]           (fake weights, tests)
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

SAMPLE_RATE = 16000
SEGMENT_SAMPLES = 163840  # 10.24 s
N_MELS = 128
N_FRAMES = 1024
PATCH = 16
STRIDE = 10
PREFIX = "module."

# docs/front_ends.md, "AST (16 kHz)": torchaudio.compliance.kaldi.fbank with
# AST's arguments, padded/cropped to 1024 frames, AST's normalisation.
def input_config():
    """docs/front_ends.md, "AST (16 kHz)": Kaldi fbank as AST's loader computes it."""
    pb = common.config_pb2()
    return pb.InputConfig(
        sample_rate=SAMPLE_RATE,
        log_mel=pb.LogMelFrontEnd(
            n_fft=512, win_length=400, hop_length=160, window=pb.WINDOW_HANN_SYMMETRIC, center=False,
            pre_emphasis=0.97, pre_emphasis_mode=pb.PRE_EMPHASIS_PER_FRAME, remove_dc=True,
            subtract_mean=True, n_mels=N_MELS, f_min=20, mel_scale=pb.MEL_KALDI, power=2,
            log=pb.LOG_NATURAL, log_floor=1.1920929e-07, norm_mean=-4.2677393, norm_std=9.1379948,
            num_frames=N_FRAMES),
        layout=pb.LAYOUT_BTF)


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=PATCH, stride=STRIDE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, E]


class DistilledViT(nn.Module):
    """The `v` of ASTModel: timm's distilled ViT with a 1-channel patch conv."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int,
                 num_patches: int, imagenet_classes: int):
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 2, embed_dim))
        self.blocks = nn.Sequential(*[vc.Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        # ImageNet heads kept in the checkpoint, never used by AST.
        self.head = nn.Linear(embed_dim, imagenet_classes)
        self.head_dist = nn.Linear(embed_dim, imagenet_classes)


class AST(nn.Module):
    """AST at inference: fbank [B, T, 128] -> (logits, embedding)."""

    def __init__(self, num_classes: int = 527, embed_dim: int = 768,
                 depth: int = 12, num_heads: int = 12,
                 grid: Tuple[int, int] = (12, 101), imagenet_classes: int = 1000):
        super().__init__()
        self.v = DistilledViT(embed_dim, depth, num_heads, grid[0] * grid[1],
                              imagenet_classes)
        self.mlp_head = nn.Sequential(nn.LayerNorm(embed_dim),
                                      nn.Linear(embed_dim, num_classes))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x.unsqueeze(1).transpose(2, 3)  # [B, 1, F, T]
        b = x.shape[0]
        x = self.v.patch_embed(x)
        cls = self.v.cls_token.expand(b, -1, -1)
        dist = self.v.dist_token.expand(b, -1, -1)
        x = torch.cat((cls, dist, x), dim=1) + self.v.pos_embed
        x = self.v.blocks(x)
        x = self.v.norm(x)
        embedding = (x[:, 0] + x[:, 1]) / 2
        return self.mlp_head(embedding), embedding


def patch_grid(n_mels: int = N_MELS, n_frames: int = N_FRAMES) -> Tuple[int, int]:
    return ((n_mels - PATCH) // STRIDE + 1, (n_frames - PATCH) // STRIDE + 1)


def strip_prefix(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Removes DataParallel's 'module.' prefix (every key must carry it, or none)."""
    with_prefix = [k for k in state if k.startswith(PREFIX)]
    if not with_prefix:
        return dict(state)
    if len(with_prefix) != len(state):
        odd = sorted(k for k in state if not k.startswith(PREFIX))
        raise common.ExportError("some keys lack the 'module.' prefix the others have: "
                             + ", ".join(odd))
    return {k[len(PREFIX):]: v for k, v in state.items()}


def model_from_state(state: Dict[str, torch.Tensor]) -> AST:
    """Builds an AST shaped like the checkpoint and loads it strictly."""
    prefixed = all(k.startswith(PREFIX) for k in state)
    state = strip_prefix(state)
    cls = vc.require_key(state, "v.cls_token")
    head = vc.require_key(state, "mlp_head.1.weight")
    imagenet = vc.require_key(state, "v.head.weight")
    pos = vc.require_key(state, "v.pos_embed")
    embed_dim = cls.shape[-1]
    if embed_dim % 64:
        raise common.ExportError(f"embedding size {embed_dim} is not a multiple of 64")
    grid = patch_grid()
    if pos.shape[1] != grid[0] * grid[1] + 2:
        raise common.ExportError(
            f"v.pos_embed has {pos.shape[1]} positions; a 128 x 1024 input with "
            f"16x16 patches at stride 10 needs {grid[0] * grid[1] + 2} "
            "(only the 10/10-stride, 1024-frame checkpoints are supported)")
    model = AST(num_classes=head.shape[0], embed_dim=embed_dim,
                depth=vc.count_blocks(state, "v."), num_heads=embed_dim // 64,
                grid=grid, imagenet_classes=imagenet.shape[0])
    common.load_state_dict_strict(model, state, "AST checkpoint", PREFIX if prefixed else "")
    return model.eval()


def make_random_checkpoint(path: str, classes: int, depth: int, seed: int) -> None:
    model = AST(num_classes=classes, depth=depth)
    vc.randomize_(model, seed)
    # As published: a DataParallel state dict, every key prefixed 'module.'.
    state = {PREFIX + k: v for k, v in model.state_dict().items()}
    vc.save_checkpoint(state, path)
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote random AST checkpoint {path}: {classes} classes, depth "
          f"{depth}, {n} parameters")


# How the last partial segment is padded (--last-segment).
LAST_SEGMENT = {"features": "LAST_SEGMENT_PAD_FEATURES", "waveform": "LAST_SEGMENT_PAD"}
LAST_SEGMENT_NOTE = {
    "features": "fbank of the real samples, frames zero-padded to 1024 before "
                "the normalisation (AST's loader, _wav2fbank)",
    "waveform": "waveform zero-padded to 10.24 s before the fbank "
                "(not what AST's loader does)",
}


def model_config(num_classes: int, embed_dim: int, args):
    """(ModelConfig, header) of an exported AST."""
    pb = common.config_pb2()
    ckpt = os.path.basename(args.checkpoint)
    desc = (f"AST (AudioSet, {num_classes} classes) from {ckpt}; 10.24 s "
            "segments at 16 kHz; exported by tools/export/ast_export.py")
    hop = int(round(args.hop_seconds * SAMPLE_RATE)) if args.hop_seconds else SEGMENT_SAMPLES
    config = common.model_config(
        description=desc, input=input_config(),
        segment=pb.SegmentConfig(window_samples=SEGMENT_SAMPLES, hop_samples=hop,
                                 last_segment=pb.LastSegment.Value(LAST_SEGMENT[args.last_segment])),
        outputs=vc.outputs(num_classes, embed_dim, args.activation), args=args)
    header = ("Written by tools/export/ast_export.py. The network returns (logits,\n"
              "embedding); audiotag applies the activation to the logits.\n"
              f"Last partial segment: {LAST_SEGMENT_NOTE[args.last_segment]}")
    return config, header


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="export.py ast",
        description="Export an AST checkpoint (audioset_10_10_0.4593.pth) to an "
                    "audiotag model folder.")
    vc.add_export_args(p, "the downloaded .pth file", "10.24")
    p.add_argument("--labels", help="AudioSet class_labels_indices.csv or a "
                   "text file with one label per line")
    p.add_argument("--classes", type=int, default=527)
    p.add_argument("--last-segment", choices=sorted(LAST_SEGMENT), default="features",
                   help="how a clip's last partial segment is padded: 'features' (the "
                        "default, as AST's loader: the fbank of the real samples, zero "
                        "frames after them, then the normalisation) or 'waveform' "
                        "(zero samples before the fbank)")
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
    num_classes = model.mlp_head[1].out_features
    embed_dim = model.v.cls_token.shape[-1]
    labels = vc.read_labels(args.labels, num_classes)
    example = torch.randn(2, N_FRAMES, N_MELS, generator=torch.Generator().manual_seed(1))
    config, header = model_config(num_classes, embed_dim, args)
    errors = vc.export(args, model, example, config, header, labels)
    common.log(f"wrote {args.out} (AST, {num_classes} classes, {len(model.v.blocks)} "
               f"blocks); TorchScript vs eager max abs error: logits "
               f"{errors['0']:.2e}, embedding {errors['1']:.2e}")
    common.log(f"last partial segment ({LAST_SEGMENT[args.last_segment]}): "
               f"{LAST_SEGMENT_NOTE[args.last_segment]}")


def main(argv=None) -> int:
    return vc.run_main(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
