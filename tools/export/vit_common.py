"""Shared pieces of the PaSST and AST exporters (tools/export/passt.py, ast.py).

Both teachers are ViT-base networks in timm's layout, so they share the
transformer block, strict checkpoint loading, label reading, the model folder
writer and the TorchScript-versus-eager check. Written for audiotag from the
published descriptions of the networks; no reference code is copied.

State-dict key names follow timm's VisionTransformer (as used by PaSST and
AST), e.g. ``blocks.N.norm1.weight``, ``blocks.N.attn.qkv.weight``,
``blocks.N.attn.proj.weight``, ``blocks.N.norm2.weight``,
``blocks.N.mlp.fc1.weight``, ``blocks.N.mlp.fc2.weight``.
"""

import csv
import os
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


class ExportError(RuntimeError):
    """A problem with the user's input the exporter cannot work around."""


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
        raise ExportError(f"no '{prefix}blocks.N.*' keys in the checkpoint; "
                          "is this the right checkpoint for this exporter?")
    depth = max(indices) + 1
    if indices != set(range(depth)):
        raise ExportError(f"checkpoint blocks are not numbered 0..{depth - 1}: "
                          f"{sorted(indices)}")
    return depth


def require_key(state: Dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise ExportError(f"checkpoint is missing key '{key}' (found e.g. "
                          f"{sorted(state)[:5]}); is this the right checkpoint?")
    return state[key]


# --------------------------------------------------------------------------
# Checkpoints.
# --------------------------------------------------------------------------


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Reads a checkpoint file and returns its tensor state dict.

    Accepts a bare state dict, or a dict wrapping one under 'model' or
    'state_dict' (as training frameworks save them).
    """
    if not os.path.isfile(path):
        raise ExportError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # pickle errors, truncated downloads, ...
        raise ExportError(f"cannot read checkpoint {path}: {e}") from e
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict):
        for wrapper in ("model", "state_dict"):
            inner = obj.get(wrapper)
            if isinstance(inner, dict) and inner and all(
                    torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, dict) or not obj or not all(
            torch.is_tensor(v) for v in obj.values()):
        raise ExportError(f"{path} does not hold a state dict of tensors")
    return dict(obj)


def load_strict(model: nn.Module, state: Dict[str, torch.Tensor],
                what: str, shown_prefix: str = "") -> None:
    """load_state_dict with every missing, unexpected or misshaped key named
    (as the checkpoint spells it: shown_prefix + key)."""
    own = model.state_dict()
    missing = sorted(shown_prefix + k for k in own if k not in state)
    unexpected = sorted(shown_prefix + k for k in state if k not in own)
    misshaped = sorted(
        f"{shown_prefix}{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if misshaped:
        problems.append("shape mismatches: " + "; ".join(misshaped))
    if problems:
        raise ExportError(f"checkpoint does not match the {what} network:\n  " +
                          "\n  ".join(problems))
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


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
# Labels.
# --------------------------------------------------------------------------


def read_labels(path: Optional[str], n: int, placeholder_prefix: str = "class"
                ) -> List[str]:
    """Labels for an n-class output.

    `path` is AudioSet's class_labels_indices.csv (columns index, mid,
    display_name) or a plain text file with one label per line. Without a
    path, placeholder labels are returned and a warning printed.
    """
    if not path:
        print(f"warning: no --labels given; writing {n} placeholder labels "
              f"({placeholder_prefix}_000 ...). Pass AudioSet's "
              "class_labels_indices.csv to get the class names.",
              file=sys.stderr)
        return [f"{placeholder_prefix}_{i:03d}" for i in range(n)]
    if not os.path.isfile(path):
        raise ExportError(f"labels file not found: {path}")
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    first = text.splitlines()[0] if text else ""
    if path.endswith(".csv") or "display_name" in first:
        rows = list(csv.DictReader(text.splitlines()))
        if not rows or "display_name" not in rows[0] or "index" not in rows[0]:
            raise ExportError(f"{path}: expected a CSV with columns "
                              "index, mid, display_name")
        by_index = {int(r["index"]): r["display_name"].strip() for r in rows}
        if sorted(by_index) != list(range(len(by_index))):
            raise ExportError(f"{path}: indices are not 0..{len(by_index) - 1}")
        labels = [by_index[i] for i in range(len(by_index))]
    else:
        labels = [line.strip() for line in text.splitlines() if line.strip()]
    if len(labels) != n:
        raise ExportError(f"{path} has {len(labels)} labels but the "
                          f"checkpoint has {n} classes")
    for label in labels:
        if "\n" in label or "\r" in label:
            raise ExportError(f"{path}: label {label!r} spans lines")
    return labels


# --------------------------------------------------------------------------
# TorchScript and the model folder.
# --------------------------------------------------------------------------


def to_torchscript(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """Scripts the module (any batch size); falls back to tracing."""
    model.eval()
    try:
        return torch.jit.script(model)
    except Exception as e:  # pragma: no cover - the modules here script
        print(f"note: scripting failed ({e}); tracing at {tuple(example.shape)}",
              file=sys.stderr)
        with torch.no_grad():
            return torch.jit.trace(model, example, check_trace=False)


def _as_list(out) -> List[torch.Tensor]:
    if torch.is_tensor(out):
        return [out]
    if isinstance(out, dict):
        return [out[k] for k in sorted(out)]
    return list(out)


def check_torchscript(eager: nn.Module, path: str, example: torch.Tensor,
                      names: Sequence[str], atol: float = 1e-4,
                      rtol: float = 1e-4) -> List[float]:
    """Loads the saved TorchScript file and compares it with the eager model.

    Raises ExportError when any output differs beyond atol + rtol*|eager|.
    Returns the max abs error per output.
    """
    loaded = torch.jit.load(path, map_location="cpu")
    loaded.eval()
    with torch.no_grad():
        want = _as_list(eager(example))
        got = _as_list(loaded(example))
    if len(want) != len(got):
        raise ExportError(f"TorchScript returns {len(got)} outputs, eager {len(want)}")
    errors = []
    for name, w, g in zip(names, want, got):
        if tuple(w.shape) != tuple(g.shape):
            raise ExportError(f"output {name}: TorchScript shape {tuple(g.shape)} "
                              f"vs eager {tuple(w.shape)}")
        err = (w - g).abs()
        bound = atol + rtol * w.abs()
        if not torch.isfinite(g).all() or (err > bound).any():
            raise ExportError(
                f"TorchScript output '{name}' differs from the eager model: "
                f"max abs error {err.max().item():.3g} (allowed {atol:g} + "
                f"{rtol:g}*|x|)")
        errors.append(err.max().item())
    return errors


def write_model_folder(out_dir: str, config_text: str, labels: Optional[List[str]],
                       script: torch.jit.ScriptModule, eager: nn.Module,
                       example: torch.Tensor, names: Sequence[str],
                       version: int = 1) -> List[float]:
    """Writes out_dir/config.pbtxt, labels.txt and <version>/model.pt.

    The TorchScript file is saved under a temporary name, loaded back and
    checked against the eager model first; nothing is left behind as a
    finished model folder when the check fails. Returns the max abs error per
    output.
    """
    os.makedirs(os.path.join(out_dir, str(version)), exist_ok=True)
    model_path = os.path.join(out_dir, str(version), "model.pt")
    tmp = model_path + ".tmp"
    torch.jit.save(script, tmp)
    try:
        errors = check_torchscript(eager, tmp, example, names)
    except Exception:
        os.remove(tmp)
        raise
    os.replace(tmp, model_path)
    with open(os.path.join(out_dir, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(config_text)
    if labels is not None:
        with open(os.path.join(out_dir, "labels.txt"), "w", encoding="utf-8") as f:
            f.write("".join(label + "\n" for label in labels))
    return errors


def pbtxt_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def outputs_block(num_classes: int, embed_dim: int, activation: str) -> str:
    """Outputs of a (logits, embedding) tuple: tags + per-segment activations
    from source "0", the embedding from source "1"."""
    act = {"sigmoid": "ACTIVATION_SIGMOID", "none": "ACTIVATION_NONE"}[activation]
    return (
        f'output {{ name: "tags" kind: TAGS source: "0" activation: {act} '
        f"dim: {num_classes} }}\n"
        f'output {{ name: "activations" kind: ACTIVATIONS source: "0" '
        f"activation: {act} dim: {num_classes} }}\n"
        f'output {{ name: "embedding" kind: EMBEDDING source: "1" '
        f"dim: {embed_dim} }}\n")


def batching_block(max_batch_size: int, max_queue_delay_us: int) -> str:
    return (f"batching {{ max_batch_size: {max_batch_size} "
            f"max_queue_delay_us: {max_queue_delay_us} }}\n")


def save_checkpoint(state: Dict[str, torch.Tensor], path: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    torch.save(state, path)


def add_export_args(p, checkpoint_help: str, out_example: str,
                    segment_seconds: str) -> None:
    """The command-line options the ViT exporters (PaSST, AST) share."""
    p.add_argument("checkpoint", nargs="?", help=checkpoint_help)
    p.add_argument("--checkpoint", dest="checkpoint_flag", metavar="CHECKPOINT",
                   help="the same as the positional argument")
    p.add_argument("--version", type=int, default=1,
                   help="version folder to write (default 1)")
    p.add_argument("--out", help=f"model folder to write (e.g. {out_example})")
    p.add_argument("--activation", choices=["sigmoid", "none"], default="sigmoid",
                   help="applied by audiotag to the logits (default sigmoid: "
                   "multi-label probabilities; none: raw logits)")
    p.add_argument("--hop-seconds", type=float, default=0.0,
                   help=f"segment hop (default {segment_seconds} s, no overlap)")
    p.add_argument("--max-batch-size", type=int, default=4)
    p.add_argument("--max-queue-delay-us", type=int, default=20000)
    p.add_argument("--make-random-checkpoint", metavar="PATH",
                   help="write a checkpoint of random weights shaped like the "
                   "published one to PATH and exit (for tests)")
    p.add_argument("--depth", type=int, default=12,
                   help="with --make-random-checkpoint: blocks (12 as published; "
                   "fewer only to make tests faster)")
    p.add_argument("--seed", type=int, default=0)


def parse_export_args(p, argv):
    """Parses `argv`; the checkpoint may be given positionally or by flag."""
    args = p.parse_args(argv)
    if args.checkpoint_flag:
        if args.checkpoint and args.checkpoint != args.checkpoint_flag:
            p.error("give the checkpoint once")
        args.checkpoint = args.checkpoint_flag
    return args


def run_main(fn, argv) -> int:
    """Runs an exporter main body; ExportError becomes a message and exit 1."""
    try:
        fn(argv)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
