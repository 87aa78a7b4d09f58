"""Shared pieces of the export parity tests (generic: any family may use them).

- deterministic test audio (sines + noise) encoded with the ffmpeg CLI,
- decoding with the ffmpeg CLI at a rate, channels averaged in numpy (audiotag
  downmixes by the plain channel mean; `-ac 1` would use other gains),
- the real audiotag-server on a free port with a model repository, and the
  real `audiotag analyze` CLI returning the parsed JSON,
- comparison helpers that print the measured error per output.

Run with /usr/bin/python3. The build dir comes from --build-dir or
AUDIOTAG_BUILD_DIR (bin/audiotag-server and bin/audiotag inside it).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_tools import run_tool  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class ParityFailure(AssertionError):
    pass


def log(msg: str) -> None:
    print(f"[parity] {msg}", flush=True)


def find_binaries(build_dir: Optional[str]) -> Dict[str, str]:
    build_dir = build_dir or os.environ.get("AUDIOTAG_BUILD_DIR") or os.path.join(REPO_ROOT, "build")
    out = {}
    for name in ("audiotag-server", "audiotag"):
        for cand in (os.path.join(build_dir, "bin", name), os.path.join(build_dir, name)):
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                out[name] = cand
                break
        else:
            raise ParityFailure(f"{name} not found under {build_dir} (pass --build-dir or AUDIOTAG_BUILD_DIR)")
    return out


def make_test_audio(path: str, seconds: float, rate: int = 44100, channels: int = 2, seed: int = 1234) -> None:
    """Sines (different per channel, with an amplitude envelope), a chirp and
    a little noise, written as s16 FLAC by the ffmpeg CLI."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    chans = []
    for c in range(channels):
        x = 0.25 * np.sin(2 * np.pi * (220.0 * (c + 1)) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t))
        x += 0.15 * np.sin(2 * np.pi * (1000.0 + 1500.0 * t / seconds) * t)
        x += 0.1 * np.sin(2 * np.pi * 5123.0 * t + c)
        x += 0.03 * rng.standard_normal(t.size)
        chans.append(x)
    data = np.stack(chans, 1).astype("<f4")
    raw = path + ".f32"
    data.tofile(raw)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "f32le", "-ar", str(rate),
                    "-ac", str(channels), "-i", raw, "-c:a", "flac", "-sample_fmt", "s16", path], check=True)
    os.remove(raw)


def decode_mono(path: str, rate: int, channels: int = 2) -> np.ndarray:
    """ffmpeg CLI decode + resample (libswresample defaults), then the plain
    channel mean in numpy. float32, as audiotag hands samples on."""
    p = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", path, "-ar", str(rate), "-ac", str(channels),
                        "-f", "f32le", "-"], check=True, stdout=subprocess.PIPE)
    x = np.frombuffer(p.stdout, dtype="<f4").reshape(-1, channels)
    return x.astype(np.float64).mean(1).astype(np.float32)


class Server:
    def __init__(self, binaries: Dict[str, str], repo: str, workdir: str, extra_flags: Sequence[str] = ()):
        self.bin = binaries
        port_file = os.path.join(workdir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        self.log_path = os.path.join(workdir, "server.log")
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen([binaries["audiotag-server"], "--port=0", f"--port_file={port_file}",
                                      f"--model_repository={repo}", "--metrics_port=0", *extra_flags],
                                     stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 180
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ParityFailure(f"audiotag-server exited ({self.proc.returncode}):\n{self.tail()}")
            if os.path.exists(port_file):
                txt = open(port_file).read().strip()
                if txt:
                    self.port = int(txt)
                    break
            time.sleep(0.2)
        else:
            raise ParityFailure("audiotag-server did not write its port file")
        self.address = f"127.0.0.1:{self.port}"

    def tail(self) -> str:
        try:
            return open(self.log_path).read()[-4000:]
        except OSError:
            return ""

    def wait_ready(self, names: Sequence[str], timeout: float = 300) -> None:
        deadline = time.time() + timeout
        last = ""
        while time.time() < deadline:
            r = subprocess.run([self.bin["audiotag"], "models", f"--server={self.address}", "--format=json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            last = r.stdout + r.stderr
            if r.returncode == 0:
                try:
                    data = json.loads(r.stdout)
                except ValueError:
                    data = None
                models = {m.get("name"): m for m in (data or {}).get("models", [])}
                states = {n: str(models.get(n, {}).get("state", "")) for n in names}
                if any("FAIL" in s for s in states.values()):
                    raise ParityFailure(f"model failed to load: {last}\n{self.tail()}")
                if all(s == "READY" for s in states.values()):
                    return
            time.sleep(0.5)
        raise ParityFailure(f"models {list(names)} not READY: {last}\n{self.tail()}")

    def analyze(self, path: str, model: str) -> dict:
        r = subprocess.run([self.bin["audiotag"], "analyze", path, f"--server={self.address}", f"--models={model}",
                            "--format=json", "--top_k=-1",
                            "--outputs=tags,activations,embeddings,segment_embeddings"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise ParityFailure(f"audiotag analyze failed ({r.returncode}): {r.stderr}\n{self.tail()}")
        data = json.loads(r.stdout)
        res = [x for x in data["results"] if x["model"] == model]
        if len(res) != 1:
            raise ParityFailure(f"no result for {model}: {r.stdout[:2000]}")
        return res[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def export(args: List[str]) -> None:
    """tools/export/export.py ARGS, run in this process (export_tools.py)."""
    log("$ export.py " + " ".join(args))
    r = run_tool("export.py", args)
    sys.stdout.write(r.stdout + r.stderr)
    if r.returncode != 0:
        raise ParityFailure(f"export failed ({r.returncode})")


def output(result: dict, name: str) -> dict:
    for o in result["outputs"]:
        if o["name"] == name:
            return o
    raise ParityFailure(f"output {name!r} missing; have {[o['name'] for o in result['outputs']]}")


def segment_embeddings(result: dict, name: str) -> np.ndarray:
    return np.array([s["values"] for s in output(result, name)["segments"]], dtype=np.float64)


def segment_starts(result: dict, name: str) -> List[float]:
    return [float(s.get("start_seconds", 0.0)) for s in output(result, name)["segments"]]


def pooled_embedding(result: dict, name: str) -> np.ndarray:
    return np.array(output(result, name)["pooled"]["values"], dtype=np.float64)


def tag_scores(result: dict, name: str, dim: int) -> np.ndarray:
    s = np.full(dim, np.nan)
    for t in output(result, name)["tags"]:
        s[int(t.get("index", 0))] = float(t["score"])
    if np.isnan(s).any():
        raise ParityFailure(f"output {name!r}: {int(np.isnan(s).sum())} of {dim} tags missing (top_k=-1?)")
    return s


class Report:
    """Collects max errors per output against tolerances; fails at the end."""

    def __init__(self):
        self.rows = []

    def check(self, what: str, served: np.ndarray, ref: np.ndarray, atol: float, rtol: float = 0.0) -> float:
        served = np.asarray(served, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if served.shape != ref.shape:
            self.rows.append((what, float("inf"), f"shape {served.shape} vs reference {ref.shape}", False))
            return float("inf")
        err = float(np.abs(served - ref).max()) if served.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        limit = atol + rtol * scale
        ok = bool(err <= limit) and bool(np.isfinite(served).all())
        self.rows.append((what, err, f"tolerance {limit:.3g} (atol {atol:g} + rtol {rtol:g} x max|ref| {scale:.3g})", ok))
        return err

    def require(self, what: str, ok: bool, detail: str) -> None:
        self.rows.append((what, 0.0 if ok else float("inf"), detail, bool(ok)))

    def finish(self) -> int:
        bad = 0
        for what, err, detail, ok in self.rows:
            print(f"  {'ok  ' if ok else 'FAIL'} {what}: max abs err {err:.3g}; {detail}", flush=True)
            bad += not ok
        return 1 if bad else 0


class Workdir:
    def __init__(self, keep: bool = False):
        self.path = tempfile.mkdtemp(prefix="audiotag-parity-")
        self.keep = keep

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        if self.keep:
            log(f"kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)
