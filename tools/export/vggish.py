"""VGGish teacher: network definition, checkpoint loading, audiotag export.

The network is written here from VGGish's published architecture; its state
dict uses the key names and shapes of torchvggish's converted checkpoint
(vggish-10086976.pth, a bare state dict):

  features.{0,3,6,8,11,13}.{weight,bias}   3x3 convs 1-64-128-256-256-512-512
                                            (ReLU after each, 2x2 max-pools
                                            after convs 1, 2, 4 and 6)
  embeddings.{0,2,4}.{weight,bias}          fc 12288-4096-4096-128

The flatten before the fc layers is channels-last (B, 6, 4, 512), as in the
TF original. TF's last fc ("fc2") has no ReLU; torchvggish adds one. TF's
vggish_postprocess quantises with astype(uint8) (floor); torchvggish rounds.

Which of the two pipelines the export reproduces (--style) comes from the
files it is given, and the tool prints what it chose and why:
  torchvggish  the checkpoint holds torchvggish's pproc.* PCA tensors (a whole
               torchvggish VGGish state dict), or has its release file name
               vggish-<8 hex>.pth, or the PCA file is a torch file (its
               vggish_pca_params-<8 hex>.pth): final ReLU, round.
  tf           the PCA file is the TF release's vggish_pca_params.npz: no
               final ReLU, floor.
When the files say nothing (a plain state dict under another name, no PCA)
or contradict each other, the tool stops and asks for --style tf or
--style torchvggish. --final-relu/--no-final-relu and --pca-rounding
override the style's choice for one behaviour.

Post-processing (optional, --pca): vggish_pca_params, i.e.
pca_eigen_vectors [128,128] and pca_means [128] or [128,1], from
torchvggish's .pth ("pproc" checkpoint; keys pca_eigen_vectors/pca_means, or
pca_matrix/pca_means as in torchvggish's Postprocessor state dict) or from
the TF release's vggish_pca_params.npz. The extra output `embedding_pca` is

  clip((e - means) @ eigen_vectors.T, -2, 2)            --pca-output clipped
  q = (that + 2) * 255/4; floor (TF: astype(uint8)) or   --pca-output quantized
      round (torchvggish), as float 0..255               --pca-rounding floor|round

Front-end: audiotag's VGGish log-mel block (docs/front_ends.md), the network
takes (B, 1, 96, 64) per 0.96 s patch: segment 15600 samples at 16 kHz, hop
15360, last partial patch dropped.
"""

import argparse
import os
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

try:
    from . import common
except ImportError:  # run as a script from tools/export
    import common

EMBEDDING_SIZE = 128

def input_config():
    """audiotag's VGGish log-mel (docs/front_ends.md): (B, 1, 96, 64) per patch."""
    pb = common.config_pb2()
    return pb.InputConfig(
        sample_rate=16000,
        log_mel=pb.LogMelFrontEnd(
            n_fft=512, win_length=400, hop_length=160, window=pb.WINDOW_HANN_PERIODIC, center=False,
            n_mels=64, f_min=125, f_max=7500, mel_scale=pb.MEL_KALDI, zero_dc_bin=True, power=1,
            log=pb.LOG_NATURAL, log_offset=0.01),
        layout=pb.LAYOUT_BCTF)


def segment_config():
    """0.96 s patches (96 frames of 10 ms + the 25 ms window), hop 0.96 s."""
    pb = common.config_pb2()
    return pb.SegmentConfig(window_samples=15600, hop_samples=15360, last_segment=pb.LAST_SEGMENT_DROP)


def _features() -> nn.Sequential:
    layers = []
    c_in = 1
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.ReLU()]
            c_in = int(v)
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish trunk: (B, 1, 96, 64) log-mel patch -> (B, 128) embedding."""

    def __init__(self, final_relu: bool = False):
        super().__init__()
        self.features = _features()
        fc = [nn.Linear(512 * 4 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
              nn.Linear(4096, EMBEDDING_SIZE)]
        if final_relu:
            fc.append(nn.ReLU())
        self.embeddings = nn.Sequential(*fc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)                 # (B, 512, 6, 4)
        x = x.permute(0, 2, 3, 1).flatten(1)  # channels-last flatten, as TF
        return self.embeddings(x)


class PcaQuantize(nn.Module):
    """VGGish post-processing: PCA (+whitening), clip, optional 8-bit quantise."""

    def __init__(self, eigen_vectors: torch.Tensor, means: torch.Tensor,
                 quantize: bool = True, rounding: str = "floor"):
        super().__init__()
        self.register_buffer("pca_eigen_vectors", eigen_vectors.float().reshape(EMBEDDING_SIZE, EMBEDDING_SIZE))
        self.register_buffer("pca_means", means.float().reshape(1, EMBEDDING_SIZE))
        self.quantize = quantize
        self.round_half = rounding == "round"

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        p = torch.matmul(e - self.pca_means, self.pca_eigen_vectors.t())
        p = torch.clamp(p, -2.0, 2.0)
        if not self.quantize:
            return p
        q = (p + 2.0) * (255.0 / 4.0)
        if self.round_half:
            return torch.round(q)
        return torch.floor(q)


class VGGishServed(nn.Module):
    def __init__(self, net: VGGish, pca: Optional[PcaQuantize]):
        super().__init__()
        self.net = net
        self.has_pca = pca is not None
        self.pca = pca if pca is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        e = self.net(x)
        out: Dict[str, torch.Tensor] = {"embedding": e}
        if self.has_pca:
            out["embedding_pca"] = self.pca(e)
        return out


def load_pca(path: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """(eigen_vectors [128,128], means [128]) from a .npz or a .pth."""
    if path.endswith(".npz"):
        if not os.path.isfile(path):
            raise common.ExportError(f"PCA file not found: {path}")
        with np.load(path) as z:
            d = {k: torch.from_numpy(np.asarray(z[k], dtype=np.float64)) for k in z.files}
    else:
        obj = common.torch_load(path)
        if not isinstance(obj, dict):
            raise common.ExportError(f"{path}: expected a dict of PCA tensors")
        d = {k: torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
             for k, v in obj.items()}
    ev = d.get("pca_eigen_vectors", d.get("pca_matrix"))
    mu = d.get("pca_means")
    extra = sorted(set(d) - {"pca_eigen_vectors", "pca_matrix", "pca_means"})
    if ev is None or mu is None or extra:
        raise common.ExportError(
            f"{path}: expected keys pca_eigen_vectors (or pca_matrix) and pca_means; found {sorted(d)}")
    if tuple(ev.shape) != (EMBEDDING_SIZE, EMBEDDING_SIZE) or mu.numel() != EMBEDDING_SIZE:
        raise common.ExportError(f"{path}: bad PCA shapes {tuple(ev.shape)}, {tuple(mu.shape)}")
    return ev.double(), mu.double().reshape(EMBEDDING_SIZE)


def random_checkpoint(path: str, seed: int = 0, pca_path: Optional[str] = None) -> None:
    """A checkpoint shaped like vggish-10086976.pth (and a PCA .pth like
    torchvggish's pproc file, or .npz) with random weights."""
    net = common.randomize_(VGGish(), seed)
    torch.save(net.state_dict(), path)
    if pca_path:
        g = np.random.default_rng(seed + 1)
        q, _ = np.linalg.qr(g.standard_normal((EMBEDDING_SIZE, EMBEDDING_SIZE)))
        ev = (q * g.uniform(0.05, 0.3, size=(EMBEDDING_SIZE, 1))).astype(np.float32)
        mu = (0.2 * g.standard_normal(EMBEDDING_SIZE)).astype(np.float32)
        if pca_path.endswith(".npz"):
            np.savez(pca_path, pca_eigen_vectors=ev, pca_means=mu)
        else:
            torch.save({"pca_eigen_vectors": torch.from_numpy(ev), "pca_means": torch.from_numpy(mu)}, pca_path)


# What each reference pipeline does after the shared network.
STYLES = {
    "tf": {"final_relu": False, "rounding": "floor",
           "what": "TensorFlow VGGish (no ReLU after fc2; vggish_postprocess floors with astype(uint8))"},
    "torchvggish": {"final_relu": True, "rounding": "round",
                    "what": "torchvggish (ReLU after the last fc; its Postprocessor rounds with torch.round)"},
}
TORCHVGGISH_FILE = re.compile(r"vggish-[0-9a-f]{8}\.pth")


def style_evidence(checkpoint: str, keys: List[str], pca: Optional[str]) -> List[Tuple[str, str]]:
    """(style, reason) for each thing the given files say about their origin."""
    found = []
    if any(k.startswith("pproc.") for k in keys):
        found.append(("torchvggish", "the checkpoint holds torchvggish's pproc.* PCA tensors"))
    elif TORCHVGGISH_FILE.fullmatch(os.path.basename(checkpoint)):
        found.append(("torchvggish", "the checkpoint has torchvggish's release file name (vggish-<hash>.pth)"))
    if pca:
        if pca.endswith(".npz"):
            found.append(("tf", "the PCA file is a .npz, as the TF release's vggish_pca_params.npz"))
        else:
            found.append(("torchvggish", "the PCA file is a torch file, as torchvggish's vggish_pca_params-<hash>.pth"))
    return found


def resolve_style(args, keys: List[str], has_pca: bool) -> Tuple[str, bool, str, str]:
    """(style, final_relu, rounding, why). Raises ExportError when the style
    is needed and neither given nor told by the files."""
    evidence = style_evidence(args.checkpoint, keys, args.pca)
    said = sorted({s for s, _ in evidence})
    if args.style != "auto":
        style, why = args.style, "--style " + args.style
        if said and said != [style]:
            common.log(f"note: --style {style} overrides what the files suggest: "
                        + "; ".join(r for _, r in evidence))
    elif len(said) == 1:
        style, why = said[0], "; ".join(r for _, r in evidence)
    else:
        style = None
        why = ("the files contradict each other: " + "; ".join(r for _, r in evidence) if said
               else "nothing in the files tells (a plain state dict, no PCA file)")
    needs_rounding = has_pca and args.pca_output == "quantized"
    if style is None and (args.final_relu is None or (needs_rounding and args.pca_rounding is None)):
        raise common.ExportError(
            f"cannot tell whether to reproduce TensorFlow VGGish or torchvggish: {why}. Pass --style tf "
            "(no final ReLU, floor quantisation) or --style torchvggish (final ReLU, round quantisation)")
    final_relu = args.final_relu if args.final_relu is not None else STYLES[style]["final_relu"]
    rounding = args.pca_rounding if args.pca_rounding is not None else (
        STYLES[style]["rounding"] if style else "floor")
    return style or "custom", final_relu, rounding, why


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="vggish-10086976.pth (torchvggish state dict)")
    p.add_argument("--pca", help="vggish_pca_params: torchvggish's pproc .pth or the TF .npz")
    p.add_argument("--style", choices=("auto", "tf", "torchvggish"), default="auto",
                   help="which reference pipeline to reproduce: tf (no final ReLU, floor) or torchvggish "
                        "(final ReLU, round); auto (the default) tells from the files and stops when they "
                        "do not say")
    p.add_argument("--final-relu", action=argparse.BooleanOptionalAction, default=None,
                   help="ReLU after the last fc (torchvggish) or not (TF); default: the style's")
    p.add_argument("--pca-output", choices=("quantized", "clipped"), default="quantized",
                   help="embedding_pca: 8-bit levels as float 0..255 (default) or the clipped PCA floats")
    p.add_argument("--pca-rounding", choices=("floor", "round"), default=None,
                   help="quantisation: floor = TF's astype(uint8), round = torchvggish; default: the style's")
    p.add_argument("--random-weights", action="store_true",
                   help="write random checkpoint(s) to --checkpoint (and --pca) first (tests only)")
    common.add_serving_arguments(p)


def build(args) -> Tuple[VGGishServed, Dict[str, int], str]:
    """(module, output dims, a line saying which behaviour and why)."""
    sd = common.unwrap_state_dict(common.torch_load(args.checkpoint))
    # A whole torchvggish VGGish state dict carries its PCA as pproc.*.
    pproc = {k[len("pproc."):]: v for k, v in sd.items() if k.startswith("pproc.")}
    pca_tensors = None
    if args.pca:
        pca_tensors = load_pca(args.pca)
    elif pproc:
        ev, mu = pproc.get("pca_eigen_vectors"), pproc.get("pca_means")
        if ev is None or mu is None:
            raise common.ExportError(f"{args.checkpoint}: pproc.* keys {sorted(pproc)} lack "
                                     "pca_eigen_vectors/pca_means")
        pca_tensors = (ev.double().reshape(EMBEDDING_SIZE, EMBEDDING_SIZE), mu.double().reshape(EMBEDDING_SIZE))
    style, final_relu, rounding, why = resolve_style(args, list(sd), pca_tensors is not None)
    net = VGGish(final_relu=final_relu)
    common.load_state_dict_strict(net, {k: v for k, v in sd.items() if not k.startswith("pproc.")},
                                  f"VGGish checkpoint {args.checkpoint}")
    pca = None
    dims = {"embedding": EMBEDDING_SIZE}
    if pca_tensors is not None:
        pca = PcaQuantize(*pca_tensors, quantize=args.pca_output == "quantized", rounding=rounding)
        dims["embedding_pca"] = EMBEDDING_SIZE
    behaviour = (f"final ReLU {'on' if final_relu else 'off'}" +
                 (f", PCA quantisation {rounding}" if pca is not None and args.pca_output == "quantized" else ""))
    line = (f"VGGish style: {style}" + (f" = {STYLES[style]['what']}" if style in STYLES else "") +
            f"; {behaviour}; chosen because {why}")
    common.log(line)
    return VGGishServed(net, pca).eval(), dims, line


def main(args) -> None:
    if not args.checkpoint:
        raise common.ExportError("--checkpoint is required")
    if args.random_weights:
        random_checkpoint(args.checkpoint, args.seed, args.pca)
        common.log(f"wrote random-weight checkpoint {args.checkpoint}" + (f" and {args.pca}" if args.pca else ""))
    model, dims, style_line = build(args)
    g = torch.Generator().manual_seed(args.seed)
    checks = [torch.randn(args.check_batch, 1, 96, 64, generator=g) * 2.0 - 3.0,
              torch.randn(1, 1, 96, 64, generator=g) * 2.0 - 3.0]
    outputs = [common.output("embedding", "EMBEDDING", EMBEDDING_SIZE, source="embedding")]
    if "embedding_pca" in dims:
        outputs.append(common.output("embedding_pca", "EMBEDDING", EMBEDDING_SIZE, source="embedding_pca"))
    final_relu = model.net.embeddings[-1].__class__ is nn.ReLU
    pca_desc = ""
    if model.has_pca:
        pca_desc = f", PCA {args.pca_output}"
        if args.pca_output == "quantized":
            pca_desc += " (round)" if model.pca.round_half else " (floor)"
    config = common.model_config(
        description=f"VGGish 128-d embeddings per 0.96 s patch ({'final ReLU' if final_relu else 'no final ReLU'}{pca_desc})",
        input=input_config(), segment=segment_config(), outputs=outputs, args=args)
    header = ("Written by tools/export/export.py vggish. Front-end: docs/front_ends.md (VGGish).\n"
              f"checkpoint: {os.path.basename(args.checkpoint)}" + (f", pca: {os.path.basename(args.pca)}" if args.pca else "")
              + "\n" + style_line)
    # Quantised values are integers; a float ulp at a level boundary may move
    # one level, so allow 1 there and 1e-4 elsewhere.
    tol = {"embedding": 1e-4, "embedding_pca": 1.0 if args.pca_output == "quantized" else 1e-4}
    common.export_model_folder(args, eager=model, check_inputs=checks, config=config, header=header,
                               tolerance=tol, expected_dims=dims)
