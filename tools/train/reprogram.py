#!/usr/bin/python3
"""Model reprogramming (Chen and Lerch 2023; Hung et al. 2023) on a frozen
audiotag backbone, served as a three-model audiotag pipeline.

    /usr/bin/python3 tools/train/reprogram.py --backbone models/openmic_student \
        --train build-default-model/data/train_fluidr3.npz --steps 2000 \
        --out-dir models --prefix rp

Trains only
  - an input transform: a 2-layer CNN on the log-mel, residual
    (features = x + conv2(relu(conv1(x))), conv2 starts at zero so training
    starts from the identity), output the same shape as its input, and
  - an output mapping: LayerNorm + Linear(D -> 20 OpenMIC classes)
while the backbone (an exported audiotag model folder, its TorchScript
module loaded as is) stays frozen (eval mode, no gradients to its weights).
Loss: masked BCE on the 20 classes with the per-segment targets of
tools/train/data.py; crops and augmentation as train.py (Sampler).

Exported as three model folders under --out-dir (the pipeline audiotag
serves; docs/teachers.md):
  <prefix>_transform  audio model: the backbone's input block (sample rate,
                      log-mel front-end, layout) and segment block copied
                      from its config.pbtxt; output "features" (EMBEDDING,
                      frame-wise [B, frames, n_mels])
  <prefix>_backbone   stage: input { from_model { model: "<prefix>_transform"
                      output: "features" } }; the frozen backbone module
                      behind a reshape from [B, frames, mels] to its layout;
                      the backbone's outputs unchanged
  <prefix>_head       stage: input { from_model { model: "<prefix>_backbone"
                      output: "<--backbone-output>" } }; outputs tags and
                      activations (sigmoid, 20 classes)

The training features come from the .npz sets (tools/train/frontend.py), so
the backbone's front-end must be that one (16 kHz, 512/160, 64 HTK mels,
ln(x + 1e-5), (x + 3) / 4.5): checked against its config.pbtxt.
"""
import argparse
import os
import re
import shutil
import time
from typing import Dict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import data
import frontend
import music_labels
from train import Sampler

N_CLASSES = len(music_labels.LABELS)


def block(text, key):
    """The text of the first top-level `key { ... }` block of a pbtxt (with
    the braces), or None."""
    m = re.search(r"(^|\n)\s*" + key + r"\s*\{", text)
    if not m:
        return None
    i = text.index("{", m.start())
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[m.start():j + 1].strip()
    raise ValueError(f"unbalanced braces in {key} block")


def output_blocks(text):
    out = []
    for m in re.finditer(r"(^|\n)\s*output\s*\{", text):
        out.append(block(text[m.start():], "output"))
    return out


def field(text, name):
    m = re.search(r"\b" + name + r"\s*:\s*\"?([^\s\"]+)\"?", text)
    return m.group(1) if m else None


def read_backbone(folder, output_name, check_frontend=True):
    cfg = open(os.path.join(folder, "config.pbtxt")).read()
    cfg_nc = re.sub(r"#[^\n]*", "", cfg)
    inp, seg = block(cfg_nc, "input"), block(cfg_nc, "segment")
    if inp is None or block(inp, "log_mel") is None:
        raise SystemExit(f"{folder}: the backbone must be an audio model with a log_mel "
                         "front-end")
    outs = output_blocks(cfg_nc)
    want = {"sample_rate": 16000, "n_fft": 512, "hop_length": 160, "n_mels": 64,
            "f_max": 8000, "norm_mean": frontend.NORM_MEAN, "norm_std": frontend.NORM_STD,
            "log_offset": frontend.LOG_OFFSET}
    if check_frontend:
        for k, v in want.items():
            got = field(inp, k)
            if got is None or abs(float(got) - v) > 1e-9 * max(1, abs(v)):
                raise SystemExit(f"{folder}: front-end {k} is {got}, the training features "
                                 f"(tools/train/frontend.py) use {v}")
    chosen = [o for o in outs if field(o, "name") == output_name]
    if not chosen:
        raise SystemExit(f"{folder}: no output {output_name!r}")
    versions = sorted((d for d in os.listdir(folder) if d.isdigit()), key=int)
    module = os.path.join(folder, versions[-1], "model.pt")
    return {"config": cfg_nc, "input": inp, "segment": seg, "outputs": outs,
            "layout": field(inp, "layout") or "LAYOUT_DEFAULT",
            "embed_dim": int(field(chosen[0], "dim")), "module": module,
            "name": os.path.basename(os.path.normpath(folder))}


def to_btf(x: torch.Tensor, layout: str) -> torch.Tensor:
    """Backbone-layout log-mel -> [B, T, F]."""
    if layout == "LAYOUT_BCTF":
        return x[:, 0]
    if layout == "LAYOUT_BFT":
        return x.transpose(1, 2)
    if layout == "LAYOUT_BCFT":
        return x[:, 0].transpose(1, 2)
    return x  # LAYOUT_BTF / LAYOUT_DEFAULT


def from_btf(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "LAYOUT_BCTF":
        return x.unsqueeze(1)
    if layout == "LAYOUT_BFT":
        return x.transpose(1, 2)
    if layout == "LAYOUT_BCFT":
        return x.transpose(1, 2).unsqueeze(1)
    return x


class InputTransform(nn.Module):
    """features = x + conv2(relu(conv1(x))) on the log-mel; [B, T, F] out."""

    def __init__(self, layout: str, hidden: int = 8):
        super().__init__()
        self.layout = layout
        self.conv1 = nn.Conv2d(1, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 1, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        m = to_btf(x, self.layout)
        y = m + self.conv2(F.relu(self.conv1(m.unsqueeze(1))))[:, 0]
        return {"features": y}


class BackboneStage(nn.Module):
    """The frozen backbone behind a [B, T, F] -> its-layout reshape."""

    def __init__(self, backbone, layout: str):
        super().__init__()
        self.backbone = backbone
        self.layout = layout

    def forward(self, x: torch.Tensor):
        return self.backbone(from_btf(x, self.layout))


class OutputMapping(nn.Module):
    """LayerNorm + Linear(D -> 20); a frame-wise [B, frames, D] input is
    averaged over frames first."""

    def __init__(self, dim: int, n_classes: int = N_CLASSES):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, n_classes)

    def forward(self, e: torch.Tensor) -> Dict[str, torch.Tensor]:
        if e.dim() == 3:
            e = e.mean(dim=1)
        return {"logits": self.fc(self.norm(e))}


def backbone_embedding(out, source: str):
    if isinstance(out, dict):
        return out[source]
    if isinstance(out, (tuple, list)):
        return out[int(source or 0)]
    return out


TRANSFORM_CONFIG = """\
# Reprogramming input transform (tools/train/reprogram.py) for backbone
# {backbone}: the backbone's front-end and segments; output = the
# transformed log-mel that the stage {prefix}_backbone feeds to the backbone.
name: "{name}"
description: "Reprogramming input transform: 2-layer residual CNN on the log-mel of {backbone}"
platform: "torchscript"
{input}
{segment}
output {{
  name: "features"
  kind: EMBEDDING
  source: "features"
  dim: {n_mels}
}}
batching {{
  max_batch_size: 16
}}
"""

STAGE_INPUT = """input {{
  from_model {{
    model: "{model}"
    output: "{output}"
    dim: {dim}
  }}
}}"""

BACKBONE_CONFIG = """\
# Frozen backbone {backbone} as a pipeline stage fed by {source}
# (tools/train/reprogram.py): its module unchanged behind a reshape.
name: "{name}"
description: "Frozen {backbone} on the reprogrammed log-mel of {source}"
platform: "torchscript"
{input}
{outputs}
batching {{
  max_batch_size: 16
}}
"""

HEAD_CONFIG = """\
# Reprogramming output mapping (tools/train/reprogram.py): LayerNorm +
# Linear({dim} -> {n}) on output "{output}" of {source}.
name: "{name}"
description: "Reprogrammed {backbone}: OpenMIC-2018 instrument classes (mandolin and ukulele never trained)"
platform: "torchscript"
{input}
output {{
  name: "tags"
  kind: TAGS
  source: "logits"
  activation: ACTIVATION_SIGMOID
  dim: {n}
}}
output {{
  name: "activations"
  kind: ACTIVATIONS
  source: "logits"
  activation: ACTIVATION_SIGMOID
  dim: {n}
}}
batching {{
  max_batch_size: 16
}}
"""


def write_folder(path, config, module, labels=None):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(os.path.join(path, "1"))
    module.save(os.path.join(path, "1", "model.pt"))
    with open(os.path.join(path, "config.pbtxt"), "w") as f:
        f.write(config)
    if labels:
        with open(os.path.join(path, "labels.txt"), "w") as f:
            f.write("\n".join(labels) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", required=True, help="an audiotag model folder (frozen)")
    ap.add_argument("--backbone-output", default="embedding",
                    help="the backbone output the head maps (default embedding)")
    ap.add_argument("--train", nargs="+", required=True)
    ap.add_argument("--out-dir", required=True, help="model repository to write the 3 folders to")
    ap.add_argument("--prefix", default="reprogrammed")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=8, help="channels of the transform's CNN")
    ap.add_argument("--p-mix", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-frontend-check", action="store_true")
    ap.add_argument("--save-state", default="",
                    help="also save the trained transform and head state dicts here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    bb = read_backbone(a.backbone, a.backbone_output, not a.no_frontend_check)
    src = field([o for o in bb["outputs"] if field(o, "name") == a.backbone_output][0],
                "source") or ""
    backbone = torch.jit.load(bb["module"], map_location="cpu")
    backbone.eval()
    for p in backbone.parameters():
        p.requires_grad_(False)
    layout = bb["layout"]
    transform = InputTransform(layout, a.hidden)
    stage = BackboneStage(backbone, layout)
    head = OutputMapping(bb["embed_dim"])
    params = list(transform.parameters()) + list(head.parameters())
    print(f"backbone {bb['name']} frozen ({sum(p.numel() for p in backbone.parameters())} "
          f"parameters); trainable: transform {sum(p.numel() for p in transform.parameters())}"
          f", head {sum(p.numel() for p in head.parameters())}", flush=True)
    feats, roll, offsets, metas = data.load(a.train)
    sampler = Sampler(feats, roll, offsets, rng, a.p_mix)
    opt = torch.optim.Adam(params, lr=a.lr)
    t0, run = time.time(), None
    transform.train()
    head.train()
    for step in range(1, a.steps + 1):
        x, t, m = sampler.batch(a.batch)  # [B, 1, T, F] (BCTF)
        x = from_btf(x[:, 0], layout)
        emb = backbone_embedding(stage(transform(x)["features"]), src)
        logits = head(emb)["logits"]
        loss = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * m).sum() \
            / m.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run = loss.item() if run is None else 0.98 * run + 0.02 * loss.item()
        if step % 50 == 0 or step == a.steps:
            print(f"step {step} loss {run:.4f} {time.time() - t0:.0f}s", flush=True)
    assert all(p.grad is None for p in backbone.parameters())
    transform.eval()
    head.eval()

    names = {k: f"{a.prefix}_{k}" for k in ("transform", "backbone", "head")}
    n_mels = int(field(bb["input"], "n_mels"))
    write_folder(os.path.join(a.out_dir, names["transform"]), TRANSFORM_CONFIG.format(
        backbone=bb["name"], prefix=a.prefix, name=names["transform"], input=bb["input"],
        segment=bb["segment"] or "", n_mels=n_mels), torch.jit.script(transform))
    labels_path = os.path.join(a.backbone, "labels.txt")
    bb_labels = open(labels_path).read().split("\n") if os.path.exists(labels_path) else None
    write_folder(os.path.join(a.out_dir, names["backbone"]), BACKBONE_CONFIG.format(
        backbone=bb["name"], source=names["transform"], name=names["backbone"],
        input=STAGE_INPUT.format(model=names["transform"], output="features", dim=n_mels),
        outputs="\n".join(bb["outputs"])), torch.jit.script(stage),
        [l for l in bb_labels if l] if bb_labels else None)
    write_folder(os.path.join(a.out_dir, names["head"]), HEAD_CONFIG.format(
        dim=bb["embed_dim"], n=N_CLASSES, output=a.backbone_output, source=names["backbone"],
        name=names["head"], backbone=bb["name"],
        input=STAGE_INPUT.format(model=names["backbone"], output=a.backbone_output,
                                 dim=bb["embed_dim"])),
        torch.jit.script(head), music_labels.LABELS)
    if a.save_state:
        torch.save({"transform": transform.state_dict(), "head": head.state_dict(),
                    "backbone": a.backbone, "backbone_output": a.backbone_output,
                    "steps": a.steps}, a.save_state)
    print(f"exported {', '.join(names.values())} to {a.out_dir} in {time.time() - t0:.0f}s",
          flush=True)


if __name__ == "__main__":
    main()
