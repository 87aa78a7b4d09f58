#!/usr/bin/env python3
"""Writes random-weight checkpoints shaped like the published teacher files,
for tests (nothing here is a trained model). Every family:

  make_fake_checkpoint.py vggish OUT.pth [--pca PCA.pth|PCA.npz]
  make_fake_checkpoint.py panns OUT.pth [--variant cnn14|cnn14_16k]
  make_fake_checkpoint.py openl3 OUT.pth [--input-repr mel128|mel256] [--embedding-size 512|6144]
      [--mel-norm area|l1]
  make_fake_checkpoint.py passt OUT.pt [--classes 527|20] [--depth N]
  make_fake_checkpoint.py ast OUT.pth [--classes 527] [--depth N]

(--depth: transformer blocks, 12 as published; fewer keeps tests short.)
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ast_export  # noqa: E402
import openl3  # noqa: E402
import panns  # noqa: E402
import passt  # noqa: E402
import vggish  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", choices=("vggish", "panns", "openl3", "passt", "ast"))
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pca", help="vggish: also write a PCA file (.pth or .npz)")
    p.add_argument("--variant", choices=sorted(panns.VARIANTS), default="cnn14", help="panns")
    p.add_argument("--input-repr", choices=sorted(openl3.POOL), default="mel128", help="openl3")
    p.add_argument("--embedding-size", type=int, choices=(512, 6144), default=512, help="openl3")
    p.add_argument("--mel-norm", choices=sorted(openl3.MEL_NORMS), default="area", help="openl3: the mel bank")
    p.add_argument("--classes", type=int, default=527, help="passt (527 or 20), ast")
    p.add_argument("--depth", type=int, default=12, help="passt, ast: transformer blocks")
    a = p.parse_args(argv)
    if a.family == "vggish":
        vggish.random_checkpoint(a.out, a.seed, a.pca)
    elif a.family == "panns":
        panns.random_checkpoint(a.out, a.variant, a.seed)
    elif a.family == "openl3":
        openl3.random_checkpoint(a.out, a.input_repr, a.embedding_size, a.seed, a.mel_norm)
    elif a.family == "passt":
        passt.make_random_checkpoint(a.out, a.classes, a.depth, a.seed)
    else:
        ast_export.make_random_checkpoint(a.out, a.classes, a.depth, a.seed)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
