#!/usr/bin/python3
"""Python speed of an exported model folder: segments per second for the
network alone and for front-end + network, batches of --batch, --threads
torch threads. Prints the machine's load average (a shared machine's numbers
are only indicative).

    /usr/bin/python3 tools/train/bench.py --model-dir models/openmic_student
"""
import argparse
import os
import time

import torch

import frontend


def rate(fn, batch, seconds):
    fn()  # warm-up
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        fn()
        n += batch
    return n / (time.time() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = torch.jit.load(os.path.join(a.model_dir, "1", "model.pt"))
    model.eval()
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(a.batch, frontend.SEGMENT_SAMPLES, generator=g) * 0.1
    fe = frontend.LogMel()
    mel = fe(wav)[:, None]

    def net():
        with torch.no_grad():
            model(mel)

    def fe_net():
        with torch.no_grad():
            model(fe(wav)[:, None])

    r1 = rate(net, a.batch, a.seconds)
    r2 = rate(fe_net, a.batch, a.seconds)
    print(f"batch {a.batch}, {a.threads} thread(s), load average "
          f"{os.getloadavg()[0]:.1f}: network {r1:.0f} segments/s; "
          f"front-end (float64) + network {r2:.0f} segments/s "
          f"(1 segment = 1 s of audio, 0.5 s hop: 2 segments per audio second)")


if __name__ == "__main__":
    main()
