#!/usr/bin/env python3
r"""Export a published teacher checkpoint as an audiotag model folder.

  /usr/bin/python3 tools/export/export.py vggish --checkpoint vggish-10086976.pth \
      [--pca vggish_pca_params-970ea276.pth|vggish_pca_params.npz] --out models/vggish
  /usr/bin/python3 tools/export/export.py panns --checkpoint 'Cnn14_mAP=0.431.pth' \
      [--variant cnn14|cnn14_16k] [--frontend network|audiotag] [--labels class_labels_indices.csv] \
      --out models/panns_cnn14
  /usr/bin/python3 tools/export/export.py openl3 --checkpoint torchopenl3_mel128_music_512.pth \
      --input-repr mel128 --content-type music --embedding-size 512 --out models/openl3_mel128_music_512
  /usr/bin/python3 tools/export/export.py passt ...   (tools/export/passt.py, if present)
  /usr/bin/python3 tools/export/export.py ast ...     (tools/export/ast_export.py or ast.py, if present)

Each writes OUT/config.pbtxt, OUT/labels.txt (tagging models) and
OUT/<version>/model.pt, after checking TorchScript against eager on random
input. `--random-weights` first writes a random checkpoint shaped like the
published one to --checkpoint (for tests). See docs/teachers.md.
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

FAMILIES = ("vggish", "panns", "openl3")
DELEGATED = ("passt", "ast")  # modules owned elsewhere: <name>.main(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        name = argv[0]
        here = os.path.dirname(os.path.abspath(__file__))
        # ast.py or ast_export.py (a module named `ast` would shadow the stdlib).
        cands = [os.path.join(here, f"{name}.py"), os.path.join(here, f"{name}_export.py")]
        path = next((c for c in cands if os.path.isfile(c)), cands[0])
        if not os.path.isfile(path):
            print(f"export: the '{name}' exporter (tools/export/{name}.py) is not installed", file=sys.stderr)
            return 2
        # Loaded by path: a bare `import ast` would find the standard library.
        spec = importlib.util.spec_from_file_location(f"audiotag_export_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rc = mod.main(argv[1:])
        return int(rc or 0)

    parser = argparse.ArgumentParser(prog="export.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="family", metavar="{" + ",".join(FAMILIES + DELEGATED) + "}")
    sub.required = True
    mods = {}
    for fam in FAMILIES:
        mods[fam] = importlib.import_module(fam)
        p = sub.add_parser(fam, help=(mods[fam].__doc__ or "").strip().splitlines()[0],
                           description=mods[fam].__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mods[fam].add_arguments(p)
    for fam in DELEGATED:
        sub.add_parser(fam, help=f"delegates to tools/export/{fam}.py main(argv)")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return common.run_main(lambda: mods[args.family].main(args))


if __name__ == "__main__":
    sys.exit(main())
