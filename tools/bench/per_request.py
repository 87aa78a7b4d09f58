"""The per-request comparison of scripts/run-benchmarks.sh --suite=per_request.

Two servers run side by side on the same model: audiotag as configured
(segments of all requests batch together) and the per-request baseline
(`batching { per_request: true }`: each request's segments batch together,
never with another request's, which is what a server running one forward per
request does). Cells alternate between them, so drift on a shared machine
hits both alike.

Tables:
  1. closed loop, 1 s / 10 s / 3 min clips at c = 1, 8, 32, WAV (16 kHz mono)
     and mp3 (44.1 kHz stereo, 192 kb/s, made by the ffmpeg CLI): requests/s
     and p99 of both, and the ratios (goal: throughput >= 1.0x, p99 <= 1.0x);
  2. open loop at 50% and 80% of the baseline's capacity (its c = 32
     requests/s on the open-loop clip), fixed and Poisson arrivals: p99 of
     both (goal: audiotag <= 0.5x);
  3. where one request's time goes, per stage, from the server's
     audiotag_request_stage_seconds histograms over the c = 1 mp3 cells.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

STAGES = ("upload", "decode", "frontend", "queue", "forward", "aggregate",
          "reply")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def write_repos(args, probe, max_batch):
    """audiotag's repository and the per-request baseline's."""
    repos = {}
    for name, extra in (("repo_audiotag", ""),
                        ("repo_per_request", " per_request: true")):
        folder = os.path.join(args.work, name, os.path.basename(probe))
        shutil.copytree(probe, folder)
        config = os.path.join(folder, "config.pbtxt")
        text = re.sub(r"max_batch_size: \d+",
                      "max_batch_size: %d%s" % (max_batch, extra),
                      open(config).read())
        open(config, "w").write(text)
        repos[name] = os.path.dirname(folder)
    return repos


def make_mp3(args, seconds):
    """A 44.1 kHz stereo 192 kb/s mp3 of tones and noise, by the ffmpeg CLI."""
    path = os.path.join(args.work, "clip_%gs.mp3" % seconds)
    if os.path.exists(path):
        return path
    expr = ("0.2*sin(2*PI*440*t)+0.2*sin(2*PI*1234*t)+0.05*(random(0)*2-1)|"
            "0.2*sin(2*PI*660*t)+0.2*sin(2*PI*2345*t)+0.05*(random(1)*2-1)")
    subprocess.check_call(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "aevalsrc=%s:s=44100:d=%g" % (expr, seconds), "-ac", "2",
         "-c:a", "libmp3lame", "-b:a", "192k", path])
    return path


def input_flags(args, fmt, clip):
    if fmt == "wav":
        return ["--synth_seconds=%g" % clip]
    return ["--audio=" + make_mp3(args, clip)]


def run_bench(args, server, model, fmt, clip, extra):
    cmd = [os.path.join(args.bin, "audiotag"), "bench",
           "--server=" + server.address, "--format=json",
           "--outputs=tags,embeddings", "--models=" + model,
           "--timeout_seconds=%g" % args.call_timeout]
    cmd += input_flags(args, fmt, clip) + extra
    if server.metrics_url:
        cmd.append("--metrics_url=" + server.metrics_url)
    log("  $", " ".join(cmd[1:]))
    out = subprocess.run(cmd, capture_output=True, text=True)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.exit("audiotag bench failed (%d): %s %s" %
                 (out.returncode, out.stdout, out.stderr))


def scrape_stages(server):
    """{stage: (sum, count)} from the server's /metrics; {} without it."""
    if not server.metrics_url:
        return {}
    try:
        text = urllib.request.urlopen(
            "http://%s/metrics" % server.metrics_url, timeout=10).read().decode()
    except OSError:
        return {}
    stages = {}
    for line in text.splitlines():
        m = re.match(r'audiotag_request_stage_seconds_(sum|count)'
                     r'\{stage="(\w+)"\} (\S+)', line)
        if m:
            s, c = stages.get(m.group(2), (0.0, 0.0))
            v = float(m.group(3))
            stages[m.group(2)] = (v, c) if m.group(1) == "sum" else (s, v)
    return stages


def stage_means(before, after):
    """Mean seconds per request of each stage between two scrapes."""
    means = {}
    for stage in STAGES:
        s1, c1 = after.get(stage, (0.0, 0.0))
        s0, c0 = before.get(stage, (0.0, 0.0))
        means[stage] = (s1 - s0) / (c1 - c0) if c1 > c0 else None
    return means


def row(cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"


def ms(seconds):
    return "%.0f" % (seconds * 1e3)


def ratio(a, b):
    return "%.2fx" % (a / b) if b > 0 else "n/a"


def closed_loop(args, servers, model, out, stages_out):
    """Table 1; returns {(fmt, clip, c): (audiotag result, baseline result)}."""
    results = {}
    for fmt in args.formats:
        for clip in args.clips:
            for c in args.concurrency:
                pair = []
                for name in ("audiotag", "per_request"):
                    server = servers[name]
                    before = scrape_stages(server)
                    r = run_bench(args, server, model, fmt, clip,
                                  ["--concurrency=%d" % c,
                                   "--duration_seconds=%g" % args.cell_seconds])
                    if name == "audiotag" and c == 1 and fmt == "mp3":
                        stages_out[clip] = stage_means(before,
                                                       scrape_stages(server))
                    pair.append(r)
                a, b = pair
                results[(fmt, clip, c)] = (a, b)
                la, lb = a["latency_seconds"], b["latency_seconds"]
                out.append(row([
                    fmt, "%gs" % clip, "c=%d" % c,
                    "%.2f" % b["requests_per_second"], ms(lb["p50"]),
                    ms(lb["p99"]), "%.2f" % a["requests_per_second"],
                    ms(la["p50"]), ms(la["p99"]),
                    ratio(a["requests_per_second"], b["requests_per_second"]),
                    ratio(la["p99"], lb["p99"]),
                    "%d/%d" % (failed(a), failed(b))]))
                log("   ", out[-1])
    return results


def failed(r):
    return sum(n for code, n in r["codes"].items() if code != "OK")


def open_loop(args, servers, model, closed, out):
    """Table 2 at 50% and 80% of the baseline's closed-loop capacity."""
    for fmt in args.formats:
        clip = args.open_clip
        cells = [v for (f, cl, c), v in closed.items()
                 if f == fmt and cl == clip]
        capacity = max([b["requests_per_second"] for _, b in cells] or [0])
        if capacity <= 0:
            out.append(row([fmt, "%gs" % clip, "-", "no capacity measured",
                            "-", "-", "-", "-", "-"]))
            continue
        for frac in (0.5, 0.8):
            for arrival in ("fixed", "poisson"):
                rate = frac * capacity
                pair = [run_bench(args, servers[name], model, fmt, clip,
                                  ["--rate=%.4f" % rate, "--arrival=" + arrival,
                                   "--duration_seconds=%g" % args.open_seconds])
                        for name in ("audiotag", "per_request")]
                a, b = pair
                out.append(row([
                    fmt, "%gs" % clip,
                    "%d%% (%.2f req/s), %s" % (frac * 100, rate, arrival),
                    ms(b["latency_seconds"]["p50"]),
                    ms(b["latency_seconds"]["p99"]),
                    ms(a["latency_seconds"]["p50"]),
                    ms(a["latency_seconds"]["p99"]),
                    ratio(a["latency_seconds"]["p99"],
                          b["latency_seconds"]["p99"]),
                    "%d/%d" % (failed(a), failed(b))]))
                log("   ", out[-1])


def stage_table(stages):
    lines = [row(["mp3 clip, c=1"] + list(STAGES)), row(["---"] * 8)]
    for clip, means in sorted(stages.items()):
        lines.append(row(["%gs" % clip] + [
            "%.2f" % (means[s] * 1e3) if means[s] is not None else "n/a"
            for s in STAGES]))
    return lines


def run(args, make_server, probe, best_batch, model):
    """Runs the three tables; returns the report text."""
    max_batch = min(64, max(16, best_batch))
    repos = write_repos(args, probe, max_batch)
    servers = {}
    try:
        servers["audiotag"] = make_server(repos["repo_audiotag"], "audiotag")
        servers["per_request"] = make_server(repos["repo_per_request"],
                                             "per_request")
        out, stages = [], {}
        log("== closed loop, audiotag vs per-request")
        closed = closed_loop(args, servers, model, out, stages)
        open_out = []
        log("== open loop")
        open_loop(args, servers, model, closed, open_out)
    finally:
        for server in servers.values():
            server.stop()
    header = [row(["input", "clip", "load", "per-request req/s",
                   "per-request p50 ms", "per-request p99 ms", "audiotag req/s",
                   "audiotag p50 ms", "audiotag p99 ms",
                   "throughput ratio (goal >= 1)", "p99 ratio (goal <= 1)",
                   "failed a/p"]), row(["---"] * 12)]
    open_header = [row(["input", "clip", "arrivals (share of per-request "
                        "capacity)", "per-request p50 ms",
                        "per-request p99 ms", "audiotag p50 ms",
                        "audiotag p99 ms", "p99 ratio (goal <= 0.5)",
                        "failed a/p"]), row(["---"] * 9)]
    note = ("model %s, max_batch_size %d in both; per-request = "
            "`batching { per_request: true }`; cells of %g s, open loop %g s; "
            "stage times in ms, mean per request" %
            (model, max_batch, args.cell_seconds, args.open_seconds))
    return "\n".join(header + out + [""] + open_header + open_out + [""] +
                     stage_table(stages) + ["", note])
