"""The export stack of the teacher export tools (tools/export/*.py).

Generic on purpose: nothing here knows about a model family. A family module
(vggish, panns, openl3, passt, ast_export) provides only its network, its
front-end and its outputs: it builds an eager `torch.nn.Module`, loads a
checkpoint into it with `load_state_dict_strict`, describes the model as a
ModelConfig message (`model_config`, `output`; the message classes come from
proto/audiotag/v1/model_config.proto through `config_pb2`), and hands both to
`export_model_folder`, which

  1. scripts (or traces) the module,
  2. runs eager and TorchScript on random inputs and fails loudly when any
     output differs by more than the tolerance (`check_torchscript`),
  3. writes the audiotag model folder (docs/model_repository.md):
        OUT/config.pbtxt, OUT/labels.txt (when given), OUT/<version>/model.pt
     built in a hidden staging folder next to OUT and renamed into place, so
     a running server never sees half a model; config.pbtxt is the message in
     protobuf text format (google.protobuf.text_format), under comment lines
     that say how it was made.

Run everything with Debian's /usr/bin/python3 (python3-torch 1.13).
"""

import csv
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch


class ExportError(RuntimeError):
    """A user-facing export failure (bad checkpoint, parity failure, ...)."""


def log(msg: str) -> None:
    print(f"[export] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Checkpoints

def torch_load(path: str) -> object:
    if not os.path.isfile(path):
        raise ExportError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # pickle errors, truncated downloads, ...
        raise ExportError(f"cannot read checkpoint {path}: {e}") from e
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    return obj


def unwrap_state_dict(obj: object, keys: Sequence[str] = ("model", "state_dict"),
                      strip_module: bool = True) -> Dict[str, torch.Tensor]:
    """Returns the state dict inside a checkpoint.

    Accepts a bare state dict or a dict holding it under one of `keys` (PANNs
    saves {'model': ..., 'iteration': ...}). Tensors only; a 'module.' prefix
    (DataParallel) is stripped unless `strip_module` is False.
    """
    if not isinstance(obj, Mapping):
        raise ExportError(f"checkpoint is a {type(obj).__name__}, not a dict")
    sd = obj
    for k in keys:
        if k in obj and isinstance(obj[k], Mapping):
            sd = obj[k]
            break
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        if strip_module and k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    if not out:
        raise ExportError("checkpoint holds no tensors")
    return out


def load_state_dict_strict(module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                           what: str = "checkpoint", shown_prefix: str = "") -> None:
    """load_state_dict(strict=True) with an error that names every bad key.

    Missing keys, unexpected keys and shape mismatches are all reported
    together (torch's own message stops at the first shape mismatch), each
    as the checkpoint spells it (`shown_prefix` + key). Floating tensors are
    loaded as float32.
    """
    own = module.state_dict()
    missing = sorted(shown_prefix + k for k in set(own) - set(state_dict))
    unexpected = sorted(shown_prefix + k for k in set(state_dict) - set(own))
    shapes = [f"{shown_prefix}{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sorted(set(own) & set(state_dict))
              if tuple(state_dict[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
        if shapes:
            parts.append(f"shape mismatches ({len(shapes)}): {'; '.join(shapes)}")
        raise ExportError(f"{what} does not match {type(module).__name__}:\n  " + "\n  ".join(parts))
    module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()},
                           strict=True)


def randomize_(module: torch.nn.Module, seed: int, skip: Iterable[str] = ()) -> torch.nn.Module:
    """Fills every parameter and BatchNorm buffer with seeded random values.

    Scales are chosen so activations stay O(1) through deep stacks: weights
    ~ N(0, 1/fan_in) (He-like), biases small, BN weight ~ 1, bias ~ 0, running
    stats mild. Names listed in `skip` (fixed front-end tensors) are left alone.
    """
    g = torch.Generator().manual_seed(seed)
    skip = set(skip)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name in skip or not t.is_floating_point():
                continue
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "weight" and t.dim() > 1:
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif leaf == "running_var":
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif leaf == "running_mean":
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif leaf == "weight":  # BN / LayerNorm scale
                t.copy_(0.8 + 0.4 * torch.rand(t.shape, generator=g))
            else:  # biases
                t.copy_(0.05 * torch.randn(t.shape, generator=g))
    return module


# --------------------------------------------------------------------------
# Labels

def read_labels_csv(path: str, expected: Optional[int] = None) -> List[str]:
    """Labels from AudioSet's class_labels_indices.csv (index,mid,display_name)
    or from a plain text file with one label per line."""
    if not os.path.isfile(path):
        raise ExportError(f"labels file not found: {path}")
    labels: List[str] = []
    with open(path, newline="", encoding="utf-8") as f:
        if path.endswith(".csv"):
            rows = list(csv.reader(f))
            header = [h.strip().lower() for h in rows[0]] if rows else []
            if "display_name" in header:
                col = header.index("display_name")
                idx = header.index("index") if "index" in header else None
                body = rows[1:]
                if idx is not None:
                    body = sorted(body, key=lambda r: int(r[idx]))
                labels = [r[col].strip() for r in body if r]
            else:
                labels = [r[-1].strip() for r in rows if r]
        else:
            labels = [ln.strip() for ln in f.read().splitlines()]
            while labels and not labels[-1]:
                labels.pop()
    for i, lab in enumerate(labels):
        if not lab or "\n" in lab:
            raise ExportError(f"{path}: label {i} is empty")
    if expected is not None and len(labels) != expected:
        raise ExportError(f"{path}: {len(labels)} labels, the model has {expected} classes")
    return labels


def placeholder_labels(prefix: str, n: int) -> List[str]:
    return [f"{prefix}_{i}" for i in range(n)]


# --------------------------------------------------------------------------
# config.pbtxt, built as a ModelConfig message

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_CONFIG_PROTO = "audiotag/v1/model_config.proto"
_pb2 = None


def config_pb2():
    """The Python module of proto/audiotag/v1/model_config.proto.

    Generated once per process with Debian's `protoc --python_out` into a
    temporary folder and imported from there (python3-protobuf runs it), so
    the exporters always write the schema the server of this tree parses.
    Top-level enum values are module attributes (pb.LAYOUT_BCTF, pb.TAGS).
    """
    global _pb2
    if _pb2 is not None:
        return _pb2
    protoc = shutil.which("protoc")
    if protoc is None:
        raise ExportError("protoc not found; install Debian's protobuf-compiler (scripts/install-deps.sh)")
    try:
        import google.protobuf  # noqa: F401  (only to say what is missing)
    except ImportError as e:
        raise ExportError("the protobuf Python module is missing; install Debian's python3-protobuf "
                          "(scripts/install-deps.sh)") from e
    proto_root = os.path.join(REPO_ROOT, "proto")
    with tempfile.TemporaryDirectory(prefix="audiotag-pb2-") as d:
        r = subprocess.run([protoc, f"-I{proto_root}", f"--python_out={d}", MODEL_CONFIG_PROTO],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ExportError(f"protoc failed on {MODEL_CONFIG_PROTO}: {r.stderr.strip()}")
        path = os.path.join(d, MODEL_CONFIG_PROTO[:-len(".proto")] + "_pb2.py")
        spec = importlib.util.spec_from_file_location("audiotag_model_config_pb2", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    _pb2 = mod
    return mod


def output(name: str, kind: str, dim: int, source: str = "",
           activation: str = "ACTIVATION_NONE", labels_file: str = ""):
    """An OutputConfig; `kind` and `activation` are enum value names."""
    pb = config_pb2()
    return pb.OutputConfig(name=name, kind=pb.OutputKind.Value(kind), source=source,
                           activation=pb.Activation.Value(activation), dim=dim,
                           labels_file=labels_file)


def model_config(*, description: str, input, segment, outputs: Sequence, args=None):
    """A ModelConfig from its parts (InputConfig, SegmentConfig, OutputConfigs);
    `args` (the shared serving flags, add_serving_arguments) fills batching,
    instances and warmup_batches."""
    pb = config_pb2()
    cfg = pb.ModelConfig(description=description, input=input, segment=segment, output=list(outputs))
    if args is not None:
        cfg.batching.max_batch_size = args.max_batch_size
        cfg.batching.max_queue_delay_us = args.max_queue_delay_us
        if args.device:
            cfg.instances.device = args.device
        if args.intra_op_threads:
            cfg.instances.intra_op_threads = args.intra_op_threads
        if args.warmup_batches is not None:
            cfg.warmup_batches = args.warmup_batches
    return cfg


def config_text(config, header: str = "") -> str:
    """config.pbtxt: `header` as comment lines, then the message in text
    format (parsed back first, so what is written is what the server reads)."""
    from google.protobuf import text_format
    body = text_format.MessageToString(config)
    text_format.Parse(body, type(config)())
    text = ""
    for line in header.strip().splitlines():
        text += f"# {line}".rstrip() + "\n"
    return text + body


def add_serving_arguments(p, *, out_required: bool = True, max_batch_size: int = 8,
                          max_queue_delay_us: int = 2000) -> None:
    """Flags every family shares: where to write, how to serve, how to check."""
    p.add_argument("--out", required=out_required, help="model folder to write (its name is the model name)")
    p.add_argument("--version", type=int, default=1, help="version folder (default 1)")
    p.add_argument("--force", action="store_true", help="replace an existing version folder")
    p.add_argument("--max-batch-size", type=int, default=max_batch_size,
                   help=f"batching.max_batch_size (default {max_batch_size})")
    p.add_argument("--max-queue-delay-us", type=int, default=max_queue_delay_us,
                   help=f"batching.max_queue_delay_us (default {max_queue_delay_us})")
    p.add_argument("--device", default="", help='instances.device ("cpu", "cuda", "cuda:N"); default cpu')
    p.add_argument("--intra-op-threads", type=int, default=0)
    p.add_argument("--warmup-batches", type=int, default=None,
                   help="warmup_batches in the config (server default 1)")
    p.add_argument("--check-tolerance", type=float, default=None,
                   help="max abs difference allowed between eager and TorchScript (family default)")
    p.add_argument("--check-batch", type=int, default=2, help="batch size of the TorchScript check")
    p.add_argument("--seed", type=int, default=0, help="seed of the random check input")


# --------------------------------------------------------------------------
# TorchScript

Outputs = Union[torch.Tensor, Tuple[torch.Tensor, ...], List[torch.Tensor], Dict[str, torch.Tensor]]


def _flatten(out: Outputs) -> Dict[str, torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return {"": out}
    if isinstance(out, (tuple, list)):
        return {str(i): t for i, t in enumerate(out)}
    if isinstance(out, dict):
        return dict(out)
    raise ExportError(f"model returned {type(out).__name__}; expected a tensor, tuple or dict")


def to_torchscript(module: torch.nn.Module, example: Optional[torch.Tensor] = None,
                   method: str = "script") -> torch.jit.ScriptModule:
    module.eval()
    if method == "script":
        return torch.jit.script(module)
    if method == "trace":
        if example is None:
            raise ExportError("tracing needs an example input")
        with torch.no_grad():
            return torch.jit.trace(module, example, check_trace=False)
    raise ExportError(f"unknown TorchScript method {method!r}")


def check_torchscript(eager: torch.nn.Module, scripted: torch.nn.Module,
                      inputs: Sequence[torch.Tensor], tolerance: Union[float, Mapping[str, float]],
                      expected_dims: Optional[Mapping[str, int]] = None,
                      rtol: float = 0.0) -> Dict[str, float]:
    """Runs both on each input; raises ExportError when an output differs by
    more than `tolerance` + `rtol` * |eager| (elementwise), is not finite, or
    has the wrong last dimension. Returns the max abs difference per output."""
    eager.eval()
    scripted.eval()
    worst: Dict[str, float] = {}
    over: Dict[str, float] = {}
    with torch.no_grad():
        for x in inputs:
            a = _flatten(eager(x))
            b = _flatten(scripted(x))
            if set(a) != set(b):
                raise ExportError(f"TorchScript outputs {sorted(b)} differ from eager {sorted(a)}")
            for k in a:
                if a[k].shape != b[k].shape:
                    raise ExportError(f"output {k!r}: TorchScript shape {tuple(b[k].shape)} vs eager {tuple(a[k].shape)}")
                if not torch.isfinite(b[k]).all():
                    raise ExportError(f"output {k!r}: TorchScript produced non-finite values")
                if a[k].shape[0] != x.shape[0]:
                    raise ExportError(f"output {k!r}: batch axis {a[k].shape[0]} != input batch {x.shape[0]}")
                if expected_dims and k in expected_dims and a[k].shape[-1] != expected_dims[k]:
                    raise ExportError(f"output {k!r}: last dim {a[k].shape[-1]}, config says {expected_dims[k]}")
                err = (a[k].double() - b[k].double()).abs()
                d = err.max().item() if a[k].numel() else 0.0
                worst[k] = max(worst.get(k, 0.0), d)
                if rtol and a[k].numel():  # measure the excess over the relative part
                    d = (err - rtol * a[k].double().abs()).max().item()
                over[k] = max(over.get(k, float("-inf")), d)
    def tol(k: str) -> float:
        if isinstance(tolerance, Mapping):
            return float(tolerance.get(k, tolerance.get("*", 1e-4)))
        return float(tolerance)

    rel = f" + {rtol:g}*|x|" if rtol else ""
    bad = {k: worst[k] for k, v in over.items() if not v <= tol(k)}
    for k, v in sorted(worst.items()):
        log(f"TorchScript vs eager, output {k or '<single>'!r}: max abs diff {v:.3g} (tolerance {tol(k):g}{rel})")
    if bad:
        raise ExportError("TorchScript does not match eager: " +
                          ", ".join(f"{k or '<single>'}: {v:.3g} > {tol(k):g}{rel}" for k, v in bad.items()))
    return worst


# --------------------------------------------------------------------------
# The model folder

def write_model_folder(out: str, version: int, config: str, scripted: torch.jit.ScriptModule,
                       labels: Optional[Sequence[str]] = None, force: bool = False,
                       extra_files: Optional[Mapping[str, str]] = None) -> str:
    """Writes OUT/config.pbtxt, OUT/labels.txt, OUT/<version>/model.pt.

    The version folder is built in a hidden staging folder beside OUT and
    renamed into place; config and labels are written to a temp file and
    renamed over the old ones (docs/model_repository.md, "Publishing").
    """
    out = os.path.abspath(out)
    name = os.path.basename(out.rstrip("/"))
    if not name or name.startswith("."):
        raise ExportError(f"bad model folder name {name!r}")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    version_dir = os.path.join(out, str(version))
    if os.path.exists(version_dir) and not force:
        raise ExportError(f"{version_dir} exists (use --force to replace it)")
    staging = tempfile.mkdtemp(prefix=f".staging-{name}-", dir=parent)
    try:
        os.makedirs(os.path.join(staging, str(version)))
        scripted.save(os.path.join(staging, str(version), "model.pt"))
        os.makedirs(out, exist_ok=True)

        def put(fname: str, text: str) -> None:
            tmp = os.path.join(out, f".{fname}.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, os.path.join(out, fname))

        if labels is not None:
            put("labels.txt", "".join(f"{lab}\n" for lab in labels))
        for fname, text in (extra_files or {}).items():
            put(fname, text)
        if os.path.exists(version_dir):
            old = os.path.join(staging, "old")
            os.rename(version_dir, old)
        os.rename(os.path.join(staging, str(version)), version_dir)
        put("config.pbtxt", config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"wrote {out} (config.pbtxt, {'labels.txt, ' if labels is not None else ''}{version}/model.pt)")
    return out


def export_model_folder(args, *, eager: torch.nn.Module, check_inputs: Sequence[torch.Tensor],
                        config, tolerance: Union[float, Mapping[str, float]], header: str = "",
                        labels: Optional[Sequence[str]] = None,
                        expected_dims: Optional[Mapping[str, int]] = None, method: str = "script",
                        rtol: float = 0.0,
                        extra_files: Optional[Mapping[str, str]] = None) -> Dict[str, float]:
    """The whole export of one model: script `eager`, check the saved module
    against it on `check_inputs`, then publish OUT/config.pbtxt (the
    ModelConfig `config` in text format under `header` comment lines),
    labels.txt and <version>/model.pt (write_model_folder). Every family goes
    through here; a family only provides the network, its front-end and
    outputs (the config) and the check inputs. Raises ExportError on failure,
    before anything is written."""
    eager.eval()
    # Refuse before scripting and checking (a minute for a large network);
    # write_model_folder checks again when it publishes.
    version_dir = os.path.join(os.path.abspath(args.out), str(args.version))
    if os.path.exists(version_dir) and not args.force:
        raise ExportError(f"{version_dir} exists (use --force to replace it)")
    tol = tolerance
    if getattr(args, "check_tolerance", None) is not None:  # --check-tolerance overrides every output
        tol = args.check_tolerance
    scripted = to_torchscript(eager, check_inputs[0] if check_inputs else None, method)
    # Round-trip through a file so what is checked is what the server loads.
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "model.pt")
        scripted.save(p)
        loaded = torch.jit.load(p, map_location="cpu")
    diffs = check_torchscript(eager, loaded, check_inputs, tol, expected_dims, rtol=rtol)
    write_model_folder(args.out, args.version, config_text(config, header), loaded, labels=labels, force=args.force,
                       extra_files=extra_files)
    return diffs


def run_main(fn: Callable[[], None]) -> int:
    try:
        fn()
        return 0
    except ExportError as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 1
