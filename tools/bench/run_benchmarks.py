#!/usr/bin/env python3
"""Runs audiotag's benchmark suite and prints a markdown table.

Called by scripts/run-benchmarks.sh (and `make bench`); see
docs/performance.md. Standard library only; the model is written by
tools/bench/make_bench_model.py with a python3 that has torch.

Rows:
  1. bare forward ceiling (audiotag_forward_bench, best batch size);
  2. the server at saturation: closed loop at several concurrencies and clip
     lengths, with the ratio to the ceiling;
  3. the same with batching disabled (max_batch_size 1);
  4. open-loop latency at 50% and 80% of the measured saturation rate;
  5. interactive latency while bulk clients saturate the server, against the
     same on an idle server.

A closed-loop cell sends for --cell_seconds, then waits for the calls in
flight; it always runs at least one full wave (`concurrency` requests), so a
cell costs about max(cell_seconds, concurrency x segments per clip / rate).
Cells whose wave would take longer than --max_cell_seconds at the ceiling are
skipped and listed as such.
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

MODEL = "vggish_bench"
SAMPLE_RATE = 16000
WINDOW, HOP = 15600, 15360


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def segments_in(seconds):
    n = int(round(seconds * SAMPLE_RATE))
    return 0 if n < WINDOW else (n - WINDOW) // HOP + 1


def torch_python():
    for candidate in (os.environ.get("AUDIOTAG_TORCH_PYTHON"), sys.executable,
                      "/usr/bin/python3"):
        if candidate and subprocess.call(
                [candidate, "-c", "import torch"], stderr=subprocess.DEVNULL) == 0:
            return candidate
    sys.exit("run-benchmarks: no python3 with torch (set AUDIOTAG_TORCH_PYTHON)")


class Server:
    """An audiotag-server on a free port, serving one model repository."""

    def __init__(self, args, repository, name):
        self.args = args
        self.port_file = os.path.join(args.work, name + ".port")
        self.log_path = os.path.join(args.work, name + ".log")
        self.metrics_note = ""
        with_metrics = args.server_has_metrics
        while True:
            self._start(repository, with_metrics)
            self.address = self._wait_for_port()
            if self.address or not with_metrics:
                break
            # Serve without the endpoint rather than not at all; the table
            # then says why there are no batch sizes.
            self.metrics_note = "metrics endpoint failed to start: " + \
                open(self.log_path).read().strip()[-200:]
            log(self.metrics_note)
            with_metrics = False
        if not self.address:
            sys.exit("audiotag-server exited; see " + self.log_path)
        self._wait_ready()

    def _start(self, repository, with_metrics):
        if os.path.exists(self.port_file):
            os.remove(self.port_file)
        cmd = [self.args.server_bin, "--port=0",
               "--port_file=" + self.port_file,
               "--model_repository=" + repository] + self.args.server_flag
        self.metrics_url = ""
        if with_metrics:
            port = free_port()
            cmd.append("--metrics_port=%d" % port)
            self.metrics_url = "127.0.0.1:%d" % port
        elif self.args.server_has_metrics:
            cmd.append("--metrics_port=0")
        log("starting:", " ".join(cmd))
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log_file,
                                     stderr=subprocess.STDOUT)

    def _wait_for_port(self):
        """The server's address, or None if it exited first."""
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log_file.close()
                return None
            if os.path.exists(self.port_file):
                text = open(self.port_file).read().strip()
                if text:
                    return "127.0.0.1:" + text
            time.sleep(0.2)
        sys.exit("audiotag-server did not start; see " + self.log_path)

    def _wait_ready(self):
        deadline = time.time() + 300
        while time.time() < deadline:
            out = subprocess.run(
                [os.path.join(self.args.bin, "audiotag"), "model", MODEL,
                 "--server=" + self.address], capture_output=True, text=True)
            if out.returncode == 0 and '"READY"' in out.stdout:
                return
            if '"FAILED"' in out.stdout:
                sys.exit("model failed to load: " + out.stdout)
            time.sleep(0.5)
        sys.exit("model not ready; see " + self.log_path)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_file.close()


def bench(args, server, clip, extra, background=False):
    cmd = [os.path.join(args.bin, "audiotag"), "bench",
           "--server=" + server.address, "--synth_seconds=%g" % clip,
           "--format=json", "--outputs=tags,embeddings", "--models=" + MODEL,
           "--timeout_seconds=%g" % args.call_timeout] + extra
    if server.metrics_url:
        cmd.append("--metrics_url=" + server.metrics_url)
    log("  $", " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    if background:
        return proc
    return finish(proc)


def finish(proc):
    out, err = proc.communicate()
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        sys.exit("audiotag bench failed (%d): %s %s" % (proc.returncode, out, err))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mean_batch(r):
    """Mean server batch size over the run, from its Prometheus histogram."""
    b = r.get("batch_sizes") or {}
    h = b.get(MODEL)
    return "%.1f" % h["mean"] if h and h["batches"] > 0 else "n/a"


def failed(r):
    return sum(n for code, n in r["codes"].items() if code != "OK")


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def ms(seconds):
    return "%.0f" % (seconds * 1e3)


def write_models(args, probe, max_batch):
    """Copies the probe model into a batched and an unbatched repository."""
    repos = []
    for name, size in (("repo_batched", max_batch), ("repo_unbatched", 1)):
        folder = os.path.join(args.work, name, MODEL)
        shutil.copytree(probe, folder)
        config = os.path.join(folder, "config.pbtxt")
        text = re.sub(r"max_batch_size: \d+", "max_batch_size: %d" % size,
                      open(config).read())
        open(config, "w").write(text)
        repos.append(os.path.dirname(folder))
    return repos


def ceiling(args, model_dir, sizes=None):
    sizes = sizes or ("1,2,4,8" if args.quick else "1,2,4,8,16,32,64")
    cmd = [os.path.join(args.bin, "audiotag_forward_bench"),
           "--model_dir=" + model_dir, "--batch_sizes=" + sizes,
           "--min_seconds=%g" % (0.3 if args.quick else 3), "--format=json"]
    cmd += [f for f in args.server_flag if f.startswith("--intra_op_threads")]
    log("  $", " ".join(cmd))
    return json.loads(subprocess.check_output(cmd, text=True))


def saturation(args, server, ceiling_sps, label, out):
    """Closed-loop cells; returns {(clip, concurrency): result}."""
    results = {}
    # What this server has shown it can do; the ceiling until measured.
    rate = ceiling_sps
    for clip in args.clips:
        for c in args.concurrency:
            wave = c * segments_in(clip)
            est = wave / rate
            if est > args.max_cell_seconds:
                out.append(row([label, "%gs" % clip, "c=%d" % c,
                                "skipped: one wave is %d segments, ~%.0f s at "
                                "%.1f segments/s" % (wave, est, rate), "-", "-",
                                "-", "-", "-", "-", "-"]))
                log("   ", out[-1])
                continue
            r = bench(args, server, clip,
                      ["--concurrency=%d" % c,
                       "--duration_seconds=%g" % args.cell_seconds])
            results[(clip, c)] = r
            if r["segments_per_second"] > 0:
                rate = r["segments_per_second"]
            lat = r["latency_seconds"]
            out.append(row([label, "%gs" % clip, "c=%d" % c,
                            "%.2f" % r["segments_per_second"],
                            "%.2f" % (r["segments_per_second"] / ceiling_sps),
                            "%.2f" % r["requests_per_second"], ms(lat["p50"]),
                            ms(lat["p95"]), ms(lat["p99"]), mean_batch(r),
                            failed(r)]))
            log("   ", out[-1])
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source_dir", required=True)
    p.add_argument("--build_dir", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="")
    p.add_argument("--cell_seconds", type=float, default=15)
    p.add_argument("--max_cell_seconds", type=float, default=90)
    p.add_argument("--max_queue_delay_us", type=int, default=2000)
    p.add_argument("--server_flag", action="append", default=[],
                   help="extra audiotag-server flag (repeatable)")
    p.add_argument("--server_bin", default=os.environ.get(
        "AUDIOTAG_SERVER_BIN", ""), help="default BUILD_DIR/bin/audiotag-server")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = p.parse_args()

    args.bin = os.path.join(os.path.abspath(args.build_dir), "bin")
    args.server_bin = args.server_bin or os.path.join(args.bin,
                                                      "audiotag-server")
    for tool in (os.path.join(args.bin, "audiotag"), args.server_bin,
                 os.path.join(args.bin, "audiotag_forward_bench")):
        if not os.access(tool, os.X_OK):
            sys.exit("run-benchmarks: build %s first" % tool)
    helpfull = subprocess.run([args.server_bin, "--helpfull"],
                              capture_output=True, text=True)
    args.server_has_metrics = "--metrics_port" in helpfull.stdout + helpfull.stderr
    if args.quick:
        args.size, args.cell_seconds = "tiny", 2
        args.clips, args.concurrency = [1, 10], [8]
        args.open_clip, args.open_seconds = 1, 2
    else:
        args.size = "full"
        args.clips, args.concurrency = [1, 10, 180], [8, 32, 128]
        args.open_clip, args.open_seconds = 10, 20
    args.call_timeout = 600
    args.out = args.out or os.path.join(args.build_dir, "benchmarks.md")
    args.work = tempfile.mkdtemp(prefix="audiotag-bench-")
    py = torch_python()
    started = time.time()
    servers = []
    try:
        out = []
        # 1. Ceiling, on a model folder allowing the largest batch.
        log("== bare forward ceiling")
        probe = os.path.join(args.work, "repo_probe")
        subprocess.check_call(
            [py, os.path.join(args.source_dir, "tools/bench/make_bench_model.py"),
             "--out", probe, "--name", MODEL, "--size", args.size,
             "--max_batch_size", "64",
             "--max_queue_delay_us", str(args.max_queue_delay_us)],
            stdout=sys.stderr)
        ceil = ceiling(args, os.path.join(probe, MODEL))
        best, best_sps = ceil["best_batch"], ceil["best_segments_per_second"]
        max_batch = min(64, max(8, best))
        batched_repo, unbatched_repo = write_models(
            args, os.path.join(probe, MODEL), max_batch)

        header = [row(["scenario", "clip", "load", "segments/s", "x ceiling",
                       "requests/s", "p50 ms", "p95 ms", "p99 ms",
                       "mean batch", "failed"]),
                  row(["---"] * 11)]
        out.append(row(["bare forward ceiling", "-", "batch %d" % best,
                        "%.2f" % best_sps, "1.00", "-", "-", "-", "-",
                        best, "-"]))
        for pt in ceil["points"]:
            out.append(row(["  forward, batch %d" % pt["batch"], "-",
                            "%.1f ms/batch" % pt["ms_per_batch"],
                            "%.2f" % pt["segments_per_second"],
                            "%.2f" % (pt["segments_per_second"] / best_sps),
                            "-", "-", "-", "-", pt["batch"], "-"]))

        # 2, 4, 5 on the batched server.
        log("== saturation, batching max %d" % max_batch)
        server = Server(args, batched_repo, "batched")
        servers.append(server)
        metrics_note = server.metrics_note
        sat = saturation(args, server, best_sps,
                         "batched (max %d)" % max_batch, out)

        log("== open loop")
        sat_rps = max(r["requests_per_second"] for (clip, _), r in sat.items()
                      if clip == args.open_clip)
        for frac in (0.5, 0.8):
            rate = frac * sat_rps
            # A fixed interval offers exactly `frac` of saturation; a short
            # Poisson run's count can be 20% off.
            r = bench(args, server, args.open_clip,
                      ["--rate=%.4f" % rate, "--arrival=fixed",
                       "--duration_seconds=%g" % args.open_seconds])
            lat = r["latency_seconds"]
            out.append(row(["open loop %d%% of saturation" % (frac * 100),
                            "%gs" % args.open_clip, "%.2f req/s" % rate,
                            "%.2f" % r["segments_per_second"],
                            "%.2f" % (r["segments_per_second"] / best_sps),
                            "%.2f" % r["requests_per_second"], ms(lat["p50"]),
                            ms(lat["p95"]), ms(lat["p99"]), mean_batch(r),
                            failed(r)]))
            log("   ", out[-1])

        log("== interactive under bulk load")
        inter = ["--priority=interactive", "--concurrency=1",
                 "--duration_seconds=%g" % args.open_seconds]
        idle = bench(args, server, args.open_clip, inter)
        bulk_clip = 10 if args.quick else 180
        bulk = bench(args, server, bulk_clip,
                     ["--priority=bulk", "--concurrency=8",
                      "--duration_seconds=%g" % (args.open_seconds + 5),
                      "--drain_seconds=0"], background=True)
        time.sleep(2 if args.quick else 5)
        loaded = bench(args, server, args.open_clip, inter)
        bulk_r = finish(bulk)
        for name, r in (("interactive, idle server", idle),
                        ("interactive, bulk-saturated server", loaded)):
            lat = r["latency_seconds"]
            out.append(row([name, "%gs" % args.open_clip, "c=1",
                            "%.2f" % r["segments_per_second"], "-",
                            "%.2f" % r["requests_per_second"], ms(lat["p50"]),
                            ms(lat["p95"]), ms(lat["p99"]), mean_batch(r),
                            failed(r)]))
        ratio = (loaded["latency_seconds"]["p99"] /
                 max(idle["latency_seconds"]["p99"], 1e-9))
        out.append(row(["  bulk load during it", "%gs" % bulk_clip,
                        "c=8, bulk", "%.2f" % bulk_r["segments_per_second"],
                        "-", "-", "-", "-", "-", mean_batch(bulk_r),
                        "%d (cancelled at the end)" % failed(bulk_r)]))
        out.append(row(["interactive p99 ratio loaded/idle (goal <= 1.5)", "-",
                        "-", "-", "-", "-", "-", "-", "%.2f" % ratio, "-",
                        "-"]))
        server.stop()
        servers.remove(server)

        # 3. Batching disabled.
        log("== saturation, batching disabled")
        server = Server(args, unbatched_repo, "unbatched")
        servers.append(server)
        saturation(args, server, best_sps, "batching disabled (max 1)", out)
        server.stop()
        servers.remove(server)

        # The machine may be shared: time the ceiling again and divide by the
        # better of the two, so "x ceiling" never flatters the server.
        log("== bare forward ceiling, again")
        again = ceiling(args, os.path.join(probe, MODEL), str(best))
        again_sps = again["best_segments_per_second"]
        out.append(row(["bare forward ceiling, after the runs", "-",
                        "batch %d" % best, "%.2f" % again_sps,
                        "%.2f" % (again_sps / best_sps), "-", "-", "-", "-",
                        best, "-"]))
        denominator = max(best_sps, again_sps)
        if denominator > best_sps:
            for i, line in enumerate(out):
                cells = line.split(" | ")
                if cells[0].startswith(("| batched", "| batching", "| open")) \
                        and len(cells) == 11 and cells[3][0].isdigit():
                    cells[4] = "%.2f" % (float(cells[3]) / denominator)
                    out[i] = " | ".join(cells)
        batches = sat[next(iter(sat))]["batch_sizes_note"] if sat else ""
        if batches and metrics_note:
            batches += " (" + metrics_note + ")"
        text = "\n".join(header + out)
        info = ("server %s; %s; model %s (%s, max_batch_size %d, max_queue_delay_us %d); "
                "x ceiling divides by the better ceiling, %.2f segments/s; "
                "%.0f s total; load average before/after: %s" %
                (args.server_bin, platform_line(), MODEL, args.size, max_batch,
                 args.max_queue_delay_us, denominator, time.time() - started,
                 load_line()))
        if batches:
            info += "; batch sizes: " + batches
        report = text + "\n\n" + info + "\n"
        print(report)
        with open(args.out, "w") as f:
            f.write(report)
        log("written to", args.out)
        # The smoke test's assertion: the tools ran and measured something.
        if best_sps <= 0 or not any(r["segments_per_second"] > 0
                                    for r in sat.values()):
            sys.exit("run-benchmarks: no throughput measured")
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            shutil.rmtree(args.work, ignore_errors=True)
        else:
            log("kept", args.work)


def platform_line():
    return "%s, %d cores" % (socket.gethostname(), os.cpu_count() or 0)


_load_before = os.getloadavg()


def load_line():
    return "%.1f / %.1f" % (_load_before[0], os.getloadavg()[0])


if __name__ == "__main__":
    main()
