"""Helpers for the tools/train tests: run the real audiotag-server and the
real `audiotag` CLI of a build folder (no gRPC stubs in Python)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def find_binaries(build_dir):
    for sub in ("bin", "server", "client", "."):
        s = os.path.join(build_dir, sub, "audiotag-server")
        if os.path.exists(s):
            break
    for sub in ("bin", "client", "."):
        c = os.path.join(build_dir, sub, "audiotag")
        if os.path.exists(c):
            break
    for p in (s, c):
        if not os.path.exists(p):
            sys.exit(f"missing {p}: build audiotag-server and audiotag first "
                     f"(ninja -C {build_dir} audiotag-server audiotag)")
    return s, c


class Server:
    """audiotag-server on a free port; the port is read from --port_file."""

    def __init__(self, build_dir, repo, ready_models=(), timeout=90):
        self.server_bin, self.cli = find_binaries(build_dir)
        self.tmp = tempfile.mkdtemp(prefix="at_srv_")
        port_file = os.path.join(self.tmp, "port")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "w")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [self.server_bin, "--port=0", f"--port_file={port_file}", "--metrics_port=0",
             f"--model_repository={repo}"], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        t0 = time.time()
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.proc.poll() is not None or time.time() - t0 > timeout:
                self.close()
                sys.exit(f"server did not start:\n{self.tail()}")
            time.sleep(0.1)
        time.sleep(0.05)
        self.addr = f"127.0.0.1:{open(port_file).read().strip()}"
        for m in ready_models:
            self.wait_ready(m, timeout - (time.time() - t0))

    def tail(self, n=4000):
        try:
            return open(self.log_path).read()[-n:]
        except OSError:
            return ""

    def wait_ready(self, model, timeout):
        t0 = time.time()
        while True:
            r = subprocess.run([self.cli, "model", model, f"--server={self.addr}",
                                "--format=json"], capture_output=True, text=True)
            if r.returncode == 0 and json.loads(r.stdout).get("state") == "READY":
                return
            if time.time() - t0 > timeout or self.proc.poll() is not None:
                raise RuntimeError(f"model {model} not ready: {r.stdout[-2000:]} "
                                   f"{r.stderr[-2000:]}\nserver log:\n{self.tail()}")
            time.sleep(0.3)

    def analyze(self, path, models=None, outputs="tags,activations,segment_embeddings"):
        cmd = [self.cli, "analyze", path, f"--server={self.addr}", "--format=json",
               "--top_k=-1", f"--outputs={outputs}"]
        if models:
            cmd.append("--models=" + ",".join(models))
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-3000:]}"
                               f"\nserver log:\n{self.tail()}")
        return json.loads(r.stdout)

    def bulk(self, input_dir, out_dir, models, embeddings="segments"):
        cmd = [self.cli, "bulk", f"--input_dir={input_dir}", f"--output={out_dir}",
               f"--server={self.addr}", "--models=" + ",".join(models),
               f"--embeddings={embeddings}", "--concurrency=4"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-3000:]}"
                               f"\nserver log:\n{self.tail()}")
        return r

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def result_for(response, model):
    for r in response["results"]:
        if r["model"] == model:
            return r
    raise KeyError(f"no result for model {model}: {[r['model'] for r in response['results']]}")


def output(result, name):
    for o in result["outputs"]:
        if o["name"] == name:
            return o
    raise KeyError(f"no output {name} in {[o['name'] for o in result['outputs']]}")
