#!/usr/bin/env python3
"""Writes random-weight checkpoints shaped like the published teacher files,
for tests (nothing here is a trained model).

  make_fake_checkpoint.py vggish OUT.pth [--pca PCA.pth|PCA.npz]
  make_fake_checkpoint.py panns OUT.pth [--variant cnn14|cnn14_16k]
  make_fake_checkpoint.py openl3 OUT.pth [--input-repr mel128|mel256] [--embedding-size 512|6144]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import openl3  # noqa: E402
import panns  # noqa: E402
import vggish  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("family", choices=("vggish", "panns", "openl3"))
    p.add_argument("out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pca")
    p.add_argument("--variant", choices=sorted(panns.VARIANTS), default="cnn14")
    p.add_argument("--input-repr", choices=sorted(openl3.POOL), default="mel128")
    p.add_argument("--embedding-size", type=int, choices=(512, 6144), default=512)
    a = p.parse_args()
    if a.family == "vggish":
        vggish.random_checkpoint(a.out, a.seed, a.pca)
    elif a.family == "panns":
        panns.random_checkpoint(a.out, a.variant, a.seed)
    else:
        openl3.random_checkpoint(a.out, a.input_repr, a.embedding_size, a.seed)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
