"""The ViT pieces the PaSST and AST exporters share (tools/export/passt.py,
tools/export/ast_export.py).

Both teachers are ViT-base networks in timm's layout, so they share the
transformer block, the random initialisation of fake checkpoints, their
command-line options and their outputs (logits and embedding). Everything
else (checkpoint loading, labels, the TorchScript check, writing the model
folder) is the one export stack in common.py. Written for audiotag from the
published descriptions of the networks; no reference code is copied.

State-dict key names follow timm's VisionTransformer (as used by PaSST and
AST), e.g. ``blocks.N.norm1.weight``, ``blocks.N.attn.qkv.weight``,
``blocks.N.attn.proj.weight``, ``blocks.N.norm2.weight``,
``blocks.N.mlp.fc1.weight``, ``blocks.N.mlp.fc2.weight``.
"""

import os
import re
import sys
from typing import Dict, List, Optional

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402



# --------------------------------------------------------------------------
# The transformer block (timm key names; eval-mode semantics, no dropout).
# --------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = float(self.head_dim) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        # [B, N, 3C] -> [3, B, heads, N, head_dim]
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; timm's ViT uses LayerNorm eps 1e-6."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


def count_blocks(state: Dict[str, torch.Tensor], prefix: str) -> int:
    """Number of transformer blocks in a state dict (keys prefix+blocks.N.*)."""
    pattern = re.compile(re.escape(prefix) + r"blocks\.(\d+)\.")
    indices = {int(m.group(1)) for k in state for m in [pattern.match(k)] if m}
    if not indices:
        raise common.ExportError(f"no '{prefix}blocks.N.*' keys in the checkpoint; "
                          "is this the right checkpoint for this exporter?")
    depth = max(indices) + 1
    if indices != set(range(depth)):
        raise common.ExportError(f"checkpoint blocks are not numbered 0..{depth - 1}: "
                          f"{sorted(indices)}")
    return depth


def require_key(state: Dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise common.ExportError(f"checkpoint is missing key '{key}' (found e.g. "
                          f"{sorted(state)[:5]}); is this the right checkpoint?")
    return state[key]


def randomize_(model: nn.Module, seed: int) -> None:
    """Fills every parameter with seeded random values of a sensible scale.

    For fake checkpoints only: LayerNorm weights near 1, linear weights small
    enough that a deep stack stays finite, attention weights large enough that
    attention is not uniform, so a parity test exercises every layer.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            owner = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            if isinstance(owner, nn.LayerNorm):
                if leaf == "weight":
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            elif isinstance(owner, nn.Conv2d) and leaf == "weight":
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            elif leaf == "bias":
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
            elif name.endswith("qkv.weight"):
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.03 * torch.randn(p.shape, generator=gen))


# --------------------------------------------------------------------------
# Checkpoints, labels, outputs and the export of a ViT family.
# --------------------------------------------------------------------------


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The tensor state dict of a checkpoint file: a bare state dict or one
    wrapped under 'model' or 'state_dict'; keys as stored (AST's 'module.'
    prefix is kept: ast_export.py reports keys as the file spells them)."""
    return common.unwrap_state_dict(common.torch_load(path), strip_module=False)


def save_checkpoint(state: Dict[str, torch.Tensor], path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    torch.save(state, path)


def read_labels(path: Optional[str], n: int, placeholder_prefix: str = "class") -> List[str]:
    """Labels for an n-class output: from AudioSet's class_labels_indices.csv
    or a text file with one label per line (common.read_labels_csv), or, with
    no path, placeholders <prefix>_000 ... and a warning."""
    if not path:
        common.log(f"warning: no --labels given; writing {n} placeholder labels "
                   f"({placeholder_prefix}_000 ...). Pass AudioSet's "
                   "class_labels_indices.csv to get the class names.")
        return [f"{placeholder_prefix}_{i:03d}" for i in range(n)]
    return common.read_labels_csv(path, n)


def outputs(num_classes: int, embed_dim: int, activation: str) -> list:
    """Outputs of a (logits, embedding) tuple: tags + per-segment activations
    from source "0", the embedding from source "1"."""
    act = {"sigmoid": "ACTIVATION_SIGMOID", "none": "ACTIVATION_NONE"}[activation]
    return [common.output("tags", "TAGS", num_classes, source="0", activation=act),
            common.output("activations", "ACTIVATIONS", num_classes, source="0", activation=act),
            common.output("embedding", "EMBEDDING", embed_dim, source="1")]


def add_export_args(p, checkpoint_help: str, segment_seconds: str) -> None:
    """The command-line options the ViT exporters (PaSST, AST) share, plus
    the serving flags of every family (common.add_serving_arguments)."""
    p.add_argument("checkpoint", nargs="?", help=checkpoint_help)
    p.add_argument("--checkpoint", dest="checkpoint_flag", metavar="CHECKPOINT",
                   help="the same as the positional argument")
    p.add_argument("--activation", choices=["sigmoid", "none"], default="sigmoid",
                   help="applied by audiotag to the logits (default sigmoid: "
                   "multi-label probabilities; none: raw logits)")
    p.add_argument("--hop-seconds", type=float, default=0.0,
                   help=f"segment hop (default {segment_seconds} s, no overlap)")
    p.add_argument("--make-random-checkpoint", metavar="PATH",
                   help="write a checkpoint of random weights shaped like the "
                   "published one to PATH and exit (for tests)")
    p.add_argument("--depth", type=int, default=12,
                   help="with --make-random-checkpoint: blocks (12 as published; "
                   "fewer only to make tests faster)")
    common.add_serving_arguments(p, out_required=False, max_batch_size=4, max_queue_delay_us=20000)


def parse_export_args(p, argv):
    """Parses `argv`; the checkpoint may be given positionally or by flag."""
    args = p.parse_args(argv)
    if args.checkpoint_flag:
        if args.checkpoint and args.checkpoint != args.checkpoint_flag:
            p.error("give the checkpoint once")
        args.checkpoint = args.checkpoint_flag
    return args


def export(args, model: nn.Module, example: torch.Tensor, config, header: str,
           labels: List[str]) -> Dict[str, float]:
    """common.export_model_folder for a (logits, embedding) network: checked
    on `example` within 1e-4 + 1e-4*|x| (or --check-tolerance). Returns the
    max abs difference per output ("0" logits, "1" embedding)."""
    num_classes, embed_dim = config.output[0].dim, config.output[2].dim
    return common.export_model_folder(
        args, eager=model, check_inputs=[example], config=config, header=header,
        tolerance=1e-4, rtol=1e-4, labels=labels,
        expected_dims={"0": num_classes, "1": embed_dim})


def run_main(fn, argv) -> int:
    """Runs an exporter main body; ExportError becomes a message and exit 1."""
    return common.run_main(lambda: fn(argv))
