"""Helpers shared by test_parity_passt.py and test_parity_ast.py.

Everything here is independent of the exporters under test: the audio is
written and decoded by the ffmpeg CLI, the server and client are the real
audiotag binaries, and the reference transformer runs straight from the
checkpoint's state dict with torch.nn.functional (no module of the exporter).
"""

import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_tools import run_tool  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
EXPORT_DIR = os.path.join(ROOT, "tools", "export")


def log(msg: str) -> None:
    print(msg, flush=True)


def find_binary(build_dir: str, name: str) -> str:
    for sub in ("bin", "server", "client", "."):
        path = os.path.join(build_dir, sub, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise SystemExit(f"cannot find {name} under {build_dir} (build it first)")


def run(cmd: List[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def check_run(cmd: List[str], what: str) -> str:
    r = run(cmd)
    if r.returncode != 0:
        raise AssertionError(f"{what} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def check_tool(script: str, argv: List[str], what: str) -> str:
    """tools/export/<script> ARGV, run in this process (export_tools.py);
    raises when it fails. Returns what it printed."""
    r = run_tool(script, argv)
    if r.returncode != 0:
        raise AssertionError(f"{what} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


# --------------------------------------------------------------------------
# Audio: deterministic sines + noise, mono, encoded and decoded by ffmpeg.
# --------------------------------------------------------------------------


def write_test_audio(path: str, rate: int, seconds: float) -> None:
    n = int(round(seconds * rate))
    t = np.arange(n) / rate
    rng = np.random.default_rng(1234)
    x = (0.3 * np.sin(2 * np.pi * 440.0 * t)
         + 0.2 * np.sin(2 * np.pi * 1234.5 * t) * (t > seconds / 4)
         + 0.1 * np.sin(2 * np.pi * (200.0 + 300.0 * t) * t)
         + 0.05 * rng.standard_normal(n))
    raw = path + ".f32"
    x.astype("<f4").tofile(raw)
    check_run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "f32le",
               "-ar", str(rate), "-ac", "1", "-i", raw, "-c:a", "flac",
               "-sample_fmt", "s32", path], "ffmpeg encode")
    os.remove(raw)


def decode(path: str, rate: int) -> np.ndarray:
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path,
                        "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
                       capture_output=True, check=True)
    return np.frombuffer(r.stdout, dtype="<f4").copy()


def segments(x: np.ndarray, window: int, hop: int) -> Tuple[np.ndarray, List[int]]:
    """LAST_SEGMENT_PAD framing: [S, window] zero-padded, valid samples each."""
    starts = list(range(0, max(len(x) - window, 0) + 1, hop))
    if starts[-1] + window < len(x):
        starts.append(starts[-1] + hop)
    out = np.zeros((len(starts), window), dtype=np.float32)
    valid = []
    for i, s in enumerate(starts):
        seg = x[s:s + window]
        out[i, :len(seg)] = seg
        valid.append(len(seg))
    return out, valid


def weighted_mean(rows: np.ndarray, valid: List[int], window: int) -> np.ndarray:
    """audiotag's mean pooling: each segment weighted by its share of real audio."""
    w = np.clip(np.asarray(valid, dtype=np.float64) / window, 1e-6, 1.0)
    return (rows.astype(np.float64) * w[:, None]).sum(0) / w.sum()


# --------------------------------------------------------------------------
# The reference transformer, functional, from a state dict.
# --------------------------------------------------------------------------


def vit_blocks(sd: Dict[str, torch.Tensor], prefix: str, x: torch.Tensor) -> torch.Tensor:
    """timm ViT blocks (pre-norm, LayerNorm eps 1e-6, 64-d heads, GELU)."""
    b, n, c = x.shape
    heads = c // 64
    i = 0
    while f"{prefix}blocks.{i}.norm1.weight" in sd:
        p = f"{prefix}blocks.{i}."
        h = F.layer_norm(x, (c,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], 1e-6)
        qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"])
        q, k, v = (t.reshape(b, n, heads, c // heads).transpose(1, 2)
                   for t in qkv.split(c, dim=-1))
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / (c // heads) ** 0.5, -1)
        o = torch.matmul(a, v).transpose(1, 2).reshape(b, n, c)
        x = x + F.linear(o, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = F.layer_norm(x, (c,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], 1e-6)
        h = F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        i += 1
    assert i > 0, "no blocks in the state dict"
    return F.layer_norm(x, (c,), sd[prefix + "norm.weight"], sd[prefix + "norm.bias"], 1e-6)


# --------------------------------------------------------------------------
# The real server and CLI.
# --------------------------------------------------------------------------


class Server:
    def __init__(self, build_dir: str, repo: str, workdir: str):
        self.server_bin = find_binary(build_dir, "audiotag-server")
        self.cli_bin = find_binary(build_dir, "audiotag")
        self.port_file = os.path.join(workdir, "port")
        self.log_path = os.path.join(workdir, "server.log")
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [self.server_bin, "--port=0", f"--port_file={self.port_file}",
             f"--model_repository={repo}", "--metrics_port=0"],
            stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while not (os.path.exists(self.port_file) and open(self.port_file).read().strip()):
            if self.proc.poll() is not None:
                raise AssertionError("audiotag-server exited:\n" + open(self.log_path).read())
            if time.time() > deadline:
                self.stop()
                raise AssertionError("audiotag-server did not start:\n" +
                                     open(self.log_path).read())
            time.sleep(0.2)
        self.port = int(open(self.port_file).read().strip())

    def analyze(self, audio: str, model: str) -> dict:
        out = check_run([self.cli_bin, "analyze", audio,
                         f"--server=127.0.0.1:{self.port}", f"--models={model}",
                         "--format=json", "--top_k=-1", "--pooling=mean",
                         "--outputs=tags,activations,embeddings,segment_embeddings"],
                        "audiotag analyze")
        start = out.index("{")
        return json.loads(out[start:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def served_outputs(response: dict, model: str):
    """(num_segments, tags by index, activations [S, C], embedding pooled,
    segment embeddings [S, D]) from an AnalyzeResponse in JSON."""
    results = [r for r in response["results"] if r["model"] == model]
    assert len(results) == 1, f"no result for {model}: {response}"
    res = results[0]
    outs = {o["name"]: o for o in res["outputs"]}
    for name in ("tags", "activations", "embedding"):
        assert name in outs, f"output {name} missing: {sorted(outs)}"
    n_classes = len(outs["activations"]["labels"])
    tags = np.full(n_classes, np.nan)
    for t in outs["tags"]["tags"]:
        tags[t.get("index", 0)] = t.get("score", 0.0)
    acts = np.array([f["scores"] for f in outs["activations"]["frames"]], dtype=np.float64)
    pooled = np.array(outs["embedding"]["pooled"]["values"], dtype=np.float64)
    segs = np.array([s["values"] for s in outs["embedding"]["segments"]], dtype=np.float64)
    return res["num_segments"], tags, acts, pooled, segs, outs["activations"]["labels"]


def compare(name: str, got: np.ndarray, want: np.ndarray, tol: float) -> float:
    assert got.shape == want.shape, f"{name}: served shape {got.shape} vs reference {want.shape}"
    err = float(np.max(np.abs(got - want)))
    status = "ok" if err <= tol else "FAIL"
    log(f"  {name:28s} max abs error {err:.3e} (tolerance {tol:.1e}; "
        f"reference range [{want.min():.3f}, {want.max():.3f}]) {status}")
    return err


def check_strict_loading(exporter: str, checkpoint: str, workdir: str,
                         drop_key: str, extra_key: str) -> None:
    """The exporter must refuse a checkpoint with a missing or an unexpected
    key, naming the key."""
    sd = torch.load(checkpoint, map_location="cpu")
    for label, edit, key in (("missing", lambda d: d.pop(drop_key), drop_key),
                             ("unexpected", lambda d: d.__setitem__(extra_key, torch.zeros(1)),
                              extra_key)):
        bad = dict(sd)
        edit(bad)
        path = os.path.join(workdir, f"bad_{label}.pt")
        torch.save(bad, path)
        r = run_tool(exporter, [path, "--out", os.path.join(workdir, f"bad_{label}_out")])
        os.remove(path)
        assert r.returncode != 0, f"export accepted a checkpoint with a {label} key"
        assert key in r.stderr and label in r.stderr, (
            f"export error does not name the {label} key {key}:\n{r.stderr}")
        assert not os.path.exists(os.path.join(workdir, f"bad_{label}_out", "1", "model.pt"))
        log(f"  strict loading: {label} key '{key}' rejected")
