#!/usr/bin/env python3
"""Runs audiotag's benchmark suite and prints a markdown table.

Called by scripts/run-benchmarks.sh (and `make bench`); see
docs/performance.md. Standard library only; the model is written by
tools/bench/make_bench_model.py with a python3 that has torch.

Suites (--suite):
  standard (default): the rows below.
  per_request: audiotag against the per-request baseline (no cross-request
    batching), WAV and mp3, closed and open loop, and the per-stage times of
    one request (tools/bench/per_request.py).

Rows of the standard suite:
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
A cell whose wave would take longer than --max_cell_seconds runs as a window
instead (--window_seconds of load, then cancelled) and reports what the
server computed, from its batch-size histogram, without latencies. The bare
ceiling is timed again after every server cell; each row's "x ceiling" uses
the mean of the timings just before and after it.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import per_request  # noqa: E402

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
        if args.bulk_batch_size_under_interactive and size > 1:
            text = text.replace(
                "max_batch_size: %d" % size,
                "max_batch_size: %d bulk_batch_size_under_interactive: %d" %
                (size, min(size, args.bulk_batch_size_under_interactive)))
        open(config, "w").write(text)
        repos.append(os.path.dirname(folder))
    return repos


def ceiling(args, model_dir, sizes=None, min_seconds=None):
    sizes = sizes or ("1,2,4,8" if args.quick else "1,2,4,8,16,32,64")
    if min_seconds is None:
        min_seconds = 0.3 if args.quick else 3
    cmd = [os.path.join(args.bin, "audiotag_forward_bench"),
           "--model_dir=" + model_dir, "--batch_sizes=" + sizes,
           "--min_seconds=%g" % min_seconds, "--format=json"]
    cmd += [f for f in args.server_flag if f.startswith("--intra_op_threads")]
    log("  $", " ".join(cmd))
    return json.loads(subprocess.check_output(cmd, text=True))


class LocalCeiling:
    """The bare-forward ceiling, timed again around every server cell.

    Shared machines drift (this one by +-15% within minutes), so each cell's
    "x ceiling" divides by the mean of the ceiling timed just before and just
    after it, not by one number from the start of the run.
    """

    def __init__(self, args, model_dir, batch, first_sps):
        self.args, self.model_dir, self.batch = args, model_dir, batch
        self.last = first_sps
        self.all = [first_sps]

    def measure(self):
        sps = ceiling(self.args, self.model_dir, str(self.batch),
                      min_seconds=1 if self.args.quick else 3)[
                          "best_segments_per_second"]
        self.all.append(sps)
        self.last = sps
        return sps

    def around(self, run):
        """Runs run(); returns (its result, the mean ceiling around it)."""
        before = self.last
        result = run()
        return result, (before + self.measure()) / 2


def server_sps(r):
    """Segments per second the server computed during a run, from its
    Prometheus batch-size histogram (counts segments of calls still in
    flight, unlike the replies); None without the metrics endpoint."""
    h = (r.get("batch_sizes") or {}).get(MODEL)
    if not h or r["elapsed_seconds"] <= 0:
        return None
    return h["batches"] * h["mean"] / r["elapsed_seconds"]


def saturation(args, server, ceil, label, out):
    """Closed-loop cells; returns {(clip, concurrency): result}.

    A cell whose first wave would take longer than --max_cell_seconds runs
    as a window instead: --window_seconds of load, then the calls in flight
    are cancelled, and its throughput is what the server computed in the
    window (its batch-size histogram). Such a cell has no latencies: none of
    its requests could finish.
    """
    results = {}
    # What this server has shown it can do; the ceiling until measured.
    rate = ceil.last
    for clip in args.clips:
        for c in args.concurrency:
            wave = c * segments_in(clip)
            est = wave / rate
            if est > args.max_cell_seconds:
                r, local = None, None
                if server.metrics_url:
                    r, local = ceil.around(lambda: bench(
                        args, server, clip,
                        ["--concurrency=%d" % c,
                         "--duration_seconds=%g" % args.window_seconds,
                         "--drain_seconds=0"]))
                sps = server_sps(r) if r else None
                if sps is None:
                    out.append(row([label, "%gs" % clip, "c=%d" % c,
                                    "skipped: one wave is %d segments, ~%.0f s "
                                    "at %.1f segments/s" % (wave, est, rate),
                                    "-", "-", "-", "-", "-", "-", "-"]))
                else:
                    out.append(row([
                        label, "%gs" % clip,
                        "c=%d, %g s window" % (c, args.window_seconds),
                        "%.2f" % sps, "%.2f" % (sps / local), "-", "-",
                        "-", "-", mean_batch(r),
                        "- (a wave is %d segments, ~%.0f s: latency not "
                        "measured)" % (wave, est)]))
                log("   ", out[-1])
                continue
            r, local = ceil.around(lambda: bench(
                args, server, clip,
                ["--concurrency=%d" % c,
                 "--duration_seconds=%g" % args.cell_seconds]))
            results[(clip, c)] = r
            if r["segments_per_second"] > 0:
                rate = r["segments_per_second"]
            lat = r["latency_seconds"]
            out.append(row([label, "%gs" % clip, "c=%d" % c,
                            "%.2f" % r["segments_per_second"],
                            "%.2f" % (r["segments_per_second"] / local),
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
    p.add_argument("--suite", choices=["standard", "per_request"],
                   default="standard")
    p.add_argument("--out", default="")
    p.add_argument("--cell_seconds", type=float, default=15)
    p.add_argument("--max_cell_seconds", type=float, default=90)
    p.add_argument("--window_seconds", type=float, default=30,
                   help="load time of a cell longer than --max_cell_seconds")
    p.add_argument("--max_queue_delay_us", type=int, default=2000)
    p.add_argument("--server_flag", action="append", default=[],
                   help="extra audiotag-server flag (repeatable)")
    p.add_argument("--server_bin", default=os.environ.get(
        "AUDIOTAG_SERVER_BIN", ""), help="default BUILD_DIR/bin/audiotag-server")
    p.add_argument("--keep", action="store_true", help="keep the temp folder")
    p.add_argument("--clips", dest="clips_flag", default="",
                   help="clip lengths in seconds, comma-separated (per_request "
                   "suite; default 1,10,180, or 1,10 with --quick)")
    p.add_argument("--concurrency", dest="concurrency_flag", default="",
                   help="closed-loop concurrencies, comma-separated "
                   "(per_request suite; default 1,8,32, or 1,8 with --quick)")
    p.add_argument("--interactive_seconds", type=float, default=60,
                   help="length of each interactive run (row 5); p99 is a "
                   "percentile, not the maximum, from about 100 requests on")
    p.add_argument("--only_interactive", action="store_true",
                   help="only the ceiling and row 5")
    p.add_argument("--bulk_batch_size_under_interactive", type=int, default=0,
                   help="set it in the batched model's config (default: "
                   "the config's default)")
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
    if args.suite == "per_request":
        args.formats = ["wav", "mp3"]
        if args.quick:
            args.size, args.cell_seconds = "tiny", 2
            args.clips, args.concurrency = [1, 10], [1, 8]
            args.open_clip, args.open_seconds = 10, 3
        else:
            args.size = "full"
            args.clips, args.concurrency = [1, 10, 180], [1, 8, 32]
            args.open_clip, args.open_seconds = 10, 30
        if args.clips_flag:
            args.clips = [float(c) for c in args.clips_flag.split(",")]
        if args.concurrency_flag:
            args.concurrency = [int(c) for c in args.concurrency_flag.split(",")]
    elif args.quick:
        args.size, args.cell_seconds = "tiny", 2
        args.clips, args.concurrency = [1, 10], [8]
        args.open_clip, args.open_seconds = 1, 2
        args.interactive_seconds = 2
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
        # The smallest batch within 5% of the fastest: sizes past the knee
        # differ by less than the machine's noise, and a smaller batch is
        # one concurrent clients can fill.
        top = max(pt["segments_per_second"] for pt in ceil["points"])
        knee = min((pt for pt in ceil["points"]
                    if pt["segments_per_second"] >= 0.95 * top),
                   key=lambda pt: pt["batch"])
        best, best_sps = knee["batch"], knee["segments_per_second"]
        if args.suite == "per_request":
            report = per_request.run(
                args, lambda repo, name: servers.append(
                    Server(args, repo, name)) or servers[-1],
                os.path.join(probe, MODEL), best, MODEL)
            servers.clear()
            report += ("\n\nceiling: batch %d at %.2f segments/s; server %s; "
                       "%s; %.0f s total; load average before/after: %s\n" %
                       (best, best_sps, args.server_bin, platform_line(),
                        time.time() - started, load_line()))
            print(report)
            with open(args.out, "w") as f:
                f.write(report)
            log("written to", args.out)
            return
        local_ceiling = LocalCeiling(args, os.path.join(probe, MODEL), best,
                                     best_sps)
        max_batch = min(64, max(8, best))
        batched_repo, unbatched_repo = write_models(
            args, os.path.join(probe, MODEL), max_batch)

        header = [row(["scenario", "clip", "load", "segments/s", "x ceiling",
                       "requests/s", "p50 ms", "p95 ms", "p99 ms",
                       "mean batch", "failed"]),
                  row(["---"] * 11)]
        out.append(row(["bare forward ceiling (smallest batch within 5% "
                        "of the fastest)", "-", "batch %d" % best,
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
        sat = {}
        if not args.only_interactive:
            sat = saturation(args, server, local_ceiling,
                             "batched (max %d)" % max_batch, out)
            log("== open loop")
        sat_rps = max([r["requests_per_second"] for (clip, _), r in sat.items()
                       if clip == args.open_clip] or [0])
        for frac in (0.5, 0.8) if sat else ():
            rate = frac * sat_rps
            # A fixed interval offers exactly `frac` of saturation; a short
            # Poisson run's count can be 20% off.
            r, local = local_ceiling.around(lambda: bench(
                args, server, args.open_clip,
                ["--rate=%.4f" % rate, "--arrival=fixed",
                 "--duration_seconds=%g" % args.open_seconds]))
            lat = r["latency_seconds"]
            out.append(row(["open loop %d%% of saturation" % (frac * 100),
                            "%gs" % args.open_clip, "%.2f req/s" % rate,
                            "%.2f" % r["segments_per_second"],
                            "%.2f" % (r["segments_per_second"] / local),
                            "%.2f" % r["requests_per_second"], ms(lat["p50"]),
                            ms(lat["p95"]), ms(lat["p99"]), mean_batch(r),
                            failed(r)]))
            log("   ", out[-1])

        log("== interactive under bulk load")
        inter = ["--priority=interactive", "--concurrency=1",
                 "--duration_seconds=%g" % args.interactive_seconds]
        idle = bench(args, server, args.open_clip, inter)
        bulk_clip = 10 if args.quick else 180
        bulk = bench(args, server, bulk_clip,
                     ["--priority=bulk", "--concurrency=8",
                      "--duration_seconds=%g" % (args.interactive_seconds + 5),
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
        max_ratio = (loaded["latency_seconds"]["max"] /
                     max(idle["latency_seconds"]["max"], 1e-9))
        # No bulk call finishes in the window; the server's histogram counts
        # what it computed for them: everything but the interactive segments.
        bulk_sps = server_sps(bulk_r)
        if bulk_sps is not None:
            bulk_sps -= loaded["segments"] / bulk_r["elapsed_seconds"]
        out.append(row(["  bulk load during it", "%gs" % bulk_clip,
                        "c=8, bulk",
                        "%.2f" % bulk_sps if bulk_sps is not None else "n/a",
                        "-", "-", "-", "-", "-", mean_batch(bulk_r),
                        "%d (cancelled at the end)" % failed(bulk_r)]))
        out.append(row(["interactive p99 ratio loaded/idle (goal <= 1.5)", "-",
                        "-", "-", "-", "-", "-", "-", "%.2f" % ratio, "-",
                        "- (max: %.0f / %.0f ms = %.2f)" % (
                            loaded["latency_seconds"]["max"] * 1e3,
                            idle["latency_seconds"]["max"] * 1e3, max_ratio)]))
        server.stop()
        servers.remove(server)

        # 3. Batching disabled.
        if not args.only_interactive:
            log("== saturation, batching disabled")
            server = Server(args, unbatched_repo, "unbatched")
            servers.append(server)
            saturation(args, server, local_ceiling,
                       "batching disabled (max 1)", out)
            server.stop()
            servers.remove(server)

        timings = local_ceiling.all
        out.append(row(["bare forward ceiling, timed around every cell", "-",
                        "batch %d" % best,
                        "%.2f to %.2f" % (min(timings), max(timings)),
                        "%.2f to %.2f" % (min(timings) / best_sps,
                                          max(timings) / best_sps),
                        "-", "-", "-", "-", best,
                        "- (%d timings)" % len(timings)]))
        batches = sat[next(iter(sat))]["batch_sizes_note"] if sat else ""
        if batches and metrics_note:
            batches += " (" + metrics_note + ")"
        text = "\n".join(header + out)
        info = ("server %s; %s; model %s (%s, max_batch_size %d, "
                "max_queue_delay_us %d); x ceiling of a server row divides by "
                "the mean of the bare-forward ceiling (batch %d) timed just "
                "before and just after it; %.0f s total; load average "
                "before/after: %s" %
                (args.server_bin, platform_line(), MODEL, args.size, max_batch,
                 args.max_queue_delay_us, best, time.time() - started,
                 load_line()))
        if batches:
            info += "; batch sizes: " + batches
        report = text + "\n\n" + info + "\n"
        print(report)
        with open(args.out, "w") as f:
            f.write(report)
        log("written to", args.out)
        # The smoke test's assertion: the tools ran and measured something.
        if best_sps <= 0 or (not args.only_interactive and not any(
                r["segments_per_second"] > 0 for r in sat.values())):
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
