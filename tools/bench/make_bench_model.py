#!/usr/bin/env python3
"""Writes a VGGish-sized benchmark model into an audiotag model repository.

The network has VGGish's shape (four conv stages 64-128-256-512 on a
[B, 1, 96, 64] log-mel patch, then FC 4096-4096-128, about 72M parameters)
at random, seeded weights, plus a 20-way sigmoid tag head on the embedding.
It exists to measure throughput: its outputs mean nothing.

    DIR/<name>/config.pbtxt   VGGish front-end (docs/front_ends.md), 0.96 s
                              segments, batching as given on the command line
    DIR/<name>/labels.txt     tag_00 .. tag_19
    DIR/<name>/1/model.pt     TorchScript

Usage (Debian's python3-torch):
  /usr/bin/python3 tools/bench/make_bench_model.py --out DIR [--name vggish_bench]
      [--max_batch_size 32] [--max_queue_delay_us 2000] [--size full|tiny]

--size tiny writes a much smaller net with the same interface, for smoke tests.
"""

import argparse
import os

import torch

NUM_TAGS = 20
EMBEDDING_DIM = 128


class VggishLike(torch.nn.Module):
    def __init__(self, widths, fc_width):
        super().__init__()
        layers = []
        in_ch = 1
        # VGGish: conv64, pool, conv128, pool, conv256 x2, pool, conv512 x2, pool.
        for stage, width in enumerate(widths):
            for _ in range(1 if stage < 2 else 2):
                layers += [torch.nn.Conv2d(in_ch, width, 3, padding=1),
                           torch.nn.ReLU()]
                in_ch = width
            layers.append(torch.nn.MaxPool2d(2, 2))
        self.features = torch.nn.Sequential(*layers)
        # 96x64 halved four times is 6x4.
        self.embeddings = torch.nn.Sequential(
            torch.nn.Linear(in_ch * 6 * 4, fc_width), torch.nn.ReLU(),
            torch.nn.Linear(fc_width, fc_width), torch.nn.ReLU(),
            torch.nn.Linear(fc_width, EMBEDDING_DIM))
        self.tags = torch.nn.Linear(EMBEDDING_DIM, NUM_TAGS)

    def forward(self, x: torch.Tensor):
        # x: [B, 1, 96, 64] log-mel (LAYOUT_BCTF)
        h = self.features(x)
        # VGGish flattens in NHWC order.
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)
        emb = self.embeddings(h)
        return {"embedding": emb, "tags": self.tags(emb)}


CONFIG = """\
# Written by tools/bench/make_bench_model.py: a VGGish-sized network at random
# weights, for benchmarks only.
description: "Benchmark model: VGGish-sized CNN, random weights ({size})"
input {{
  sample_rate: 16000
  log_mel {{
    n_fft: 512
    win_length: 400
    hop_length: 160
    window: WINDOW_HANN_PERIODIC
    center: false
    n_mels: 64
    f_min: 125
    f_max: 7500
    mel_scale: MEL_KALDI
    zero_dc_bin: true
    power: 1
    log: LOG_NATURAL
    log_offset: 0.01
  }}
  layout: LAYOUT_BCTF
}}
segment {{ window_samples: 15600 hop_samples: 15360 last_segment: LAST_SEGMENT_DROP }}
output {{ name: "embedding" kind: EMBEDDING source: "embedding" dim: {emb} }}
output {{ name: "tags" kind: TAGS source: "tags" activation: ACTIVATION_SIGMOID dim: {tags} }}
batching {{ max_batch_size: {max_batch} max_queue_delay_us: {delay} }}
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="model repository folder")
    parser.add_argument("--name", default="vggish_bench")
    parser.add_argument("--max_batch_size", type=int, default=32)
    parser.add_argument("--max_queue_delay_us", type=int, default=2000)
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    if args.size == "full":
        net = VggishLike([64, 128, 256, 512], 4096)
    else:
        net = VggishLike([4, 8, 8, 8], 32)
    net.eval()
    params = sum(p.numel() for p in net.parameters())

    folder = os.path.join(args.out, args.name)
    os.makedirs(os.path.join(folder, "1"), exist_ok=True)
    scripted = torch.jit.script(net)
    scripted.save(os.path.join(folder, "1", "model.pt"))
    with open(os.path.join(folder, "labels.txt"), "w") as f:
        f.write("".join("tag_%02d\n" % i for i in range(NUM_TAGS)))
    with open(os.path.join(folder, "config.pbtxt"), "w") as f:
        f.write(CONFIG.format(size="%s, %.1fM params" % (args.size, params / 1e6),
                              emb=EMBEDDING_DIM, tags=NUM_TAGS,
                              max_batch=args.max_batch_size,
                              delay=args.max_queue_delay_us))
    print("%s: %d parameters, max_batch_size %d" %
          (folder, params, args.max_batch_size))


if __name__ == "__main__":
    main()
