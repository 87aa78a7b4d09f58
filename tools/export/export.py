#!/usr/bin/env python3
r"""Export a published teacher checkpoint as an audiotag model folder.

  /usr/bin/python3 tools/export/export.py vggish --checkpoint vggish-10086976.pth \
      [--pca vggish_pca_params-970ea276.pth|vggish_pca_params.npz] --out models/vggish
  /usr/bin/python3 tools/export/export.py panns --checkpoint 'Cnn14_mAP=0.431.pth' \
      [--variant cnn14|cnn14_16k] [--frontend network|audiotag] [--labels class_labels_indices.csv] \
      --out models/panns_cnn14
  /usr/bin/python3 tools/export/export.py openl3 --checkpoint torchopenl3_mel128_music_512.pth \
      --input-repr mel128 --content-type music --embedding-size 512 --out models/openl3_mel128_music_512
  /usr/bin/python3 tools/export/export.py passt passt-s-f128-p16-s10-ap.476-swa.pt \
      [--labels class_labels_indices.csv] --out models/passt
  /usr/bin/python3 tools/export/export.py ast audioset_10_10_0.4593.pth \
      [--labels class_labels_indices.csv] --out models/ast

`export.py passt ...` and `export.py ast ...` run tools/export/passt.py and
tools/export/ast_export.py (named so because a module `ast` would shadow
Python's own) with the same arguments; `export.py passt --help` lists them.

Each writes OUT/config.pbtxt, OUT/labels.txt (tagging models) and
OUT/<version>/model.pt, after checking TorchScript against eager on random
input (tools/export/common.py runs that flow for every family).
`--random-weights` (vggish, panns, openl3) first writes a random checkpoint
shaped like the published one to --checkpoint; passt and ast take
`--make-random-checkpoint PATH`; make_fake_checkpoint.py writes one for any
family (tests only). See docs/teachers.md.
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

FAMILIES = ("vggish", "panns", "openl3")
# Families with their own argument parser (positional checkpoint): module
# name per family; main(argv) takes the arguments after the family name.
DELEGATED = {"passt": "passt", "ast": "ast_export"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        mod = importlib.import_module(DELEGATED[argv[0]])
        return int(mod.main(argv[1:]) or 0)

    parser = argparse.ArgumentParser(prog="export.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="family", metavar="{" + ",".join(FAMILIES + tuple(DELEGATED)) + "}")
    sub.required = True
    mods = {}
    for fam in FAMILIES:
        mods[fam] = importlib.import_module(fam)
        p = sub.add_parser(fam, help=(mods[fam].__doc__ or "").strip().splitlines()[0],
                           description=mods[fam].__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mods[fam].add_arguments(p)
    for fam in DELEGATED:
        sub.add_parser(fam, help=f"tools/export/{DELEGATED[fam]}.py (export.py {fam} --help lists its options)")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return common.run_main(lambda: mods[args.family].main(args))


if __name__ == "__main__":
    sys.exit(main())
