#!/usr/bin/env python3
"""The export stack every family shares (tools/export/common.py), for all
five families: vggish, panns, openl3, passt, ast.

For each family it writes a random checkpoint with make_fake_checkpoint.py,
exports it with export.py and checks that

  - config.pbtxt parses as an audiotag.v1.ModelConfig (the module protoc
    generates from proto/audiotag/v1/model_config.proto) and starts with the
    exporter's comment header;
  - (panns, openl3) the segment window and hop are the published ones;
  - the folder holds <version>/model.pt (and labels.txt for tagging models),
    and no staging folder is left beside it;
  - (vggish and passt, one family of each argument style, to keep the test
    short) a failed TorchScript check (--check-tolerance -1) writes nothing,
    and exporting over an existing version needs --force, which replaces it.

The served numbers are the parity tests' business (test_parity*.py). The
tools run inside this process (export_tools.py: their main(argv), without
a new interpreter per call).
Usage: /usr/bin/python3 tools/export/tests/test_export_stack.py [--keep DIR]
"""

import argparse
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
EXPORT_DIR = os.path.dirname(HERE)
sys.path.insert(0, EXPORT_DIR)
sys.path.insert(0, HERE)

import common  # noqa: E402
from export_tools import run_tool  # noqa: E402
from google.protobuf import text_format  # noqa: E402

# family -> (make_fake_checkpoint arguments, export arguments after the
# checkpoint, whether labels.txt is written, the outputs the config names)
FAMILIES = {
    "vggish": (["--pca", "{wd}/vggish_pca.npz"], ["--pca", "{wd}/vggish_pca.npz", "--style", "tf"], False,
               ["embedding", "embedding_pca"]),
    "panns": ([], [], True, ["tags", "embedding"]),
    "openl3": ([], [], False, ["embedding"]),
    "passt": (["--depth", "1", "--classes", "20"], [], True, ["tags", "activations", "embedding"]),
    "ast": (["--depth", "1"], [], True, ["tags", "activations", "embedding"]),
}
# The published framing of the families whose parity tests serve test-only
# framings (test_parity.py: PANNs 2 s windows, OpenL3 0.35 s hops): family ->
# (window_samples, hop_samples) the default export must write.
DEFAULT_SEGMENT = {"panns": (320000, 320000), "openl3": (48000, 4800)}
CHECKPOINT_FLAG = {"vggish": True, "panns": True, "openl3": True, "passt": False, "ast": False}
# The publishing rules are family-independent; checked on one family per parser.
PUBLISHING_CHECKED = ("vggish", "passt")


def run(cmd):
    """cmd = [tools/export/<script>, args...], run in this process (export_tools.py)."""
    return run_tool(cmd[0], cmd[1:])


def must(r, what):
    if r.returncode != 0:
        raise AssertionError(f"{what} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")


def export_cmd(family, ckpt, out, extra):
    cmd = [os.path.join(EXPORT_DIR, "export.py"), family]
    cmd += ["--checkpoint", ckpt] if CHECKPOINT_FLAG[family] else [ckpt]
    return cmd + extra + ["--out", out]


def check_family(family, wd):
    fake_args, export_args, has_labels, outputs = FAMILIES[family]
    fmt = lambda a: [x.format(wd=wd) for x in a]  # noqa: E731
    ckpt = os.path.join(wd, f"{family}.ckpt")
    must(run([os.path.join(EXPORT_DIR, "make_fake_checkpoint.py"), family, ckpt] + fmt(fake_args)),
         f"make_fake_checkpoint.py {family}")
    repo = os.path.join(wd, f"repo_{family}")
    out = os.path.join(repo, family)

    # A failed check against eager publishes nothing.
    if family in PUBLISHING_CHECKED:
        r = run(export_cmd(family, ckpt, out, fmt(export_args) + ["--check-tolerance", "-1"]))
        assert r.returncode != 0, f"{family}: export passed with --check-tolerance -1"
        assert "TorchScript does not match eager" in r.stderr, r.stderr
        assert not os.path.exists(out), f"{family}: a failed check left {out} behind"

    must(run(export_cmd(family, ckpt, out, fmt(export_args))), f"export {family}")
    with open(os.path.join(out, "config.pbtxt"), encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("# Written by tools/export/"), f"{family}: no exporter header:\n{text[:200]}"
    pb = common.config_pb2()
    config = text_format.Parse(text, pb.ModelConfig())
    names = [o.name for o in config.output]
    assert names == outputs, f"{family}: outputs {names}, want {outputs}"
    assert config.batching.max_batch_size > 0, f"{family}: no batching block"
    if family in DEFAULT_SEGMENT:
        got = (config.segment.window_samples, config.segment.hop_samples)
        assert got == DEFAULT_SEGMENT[family], f"{family}: segment (window, hop) {got}, want {DEFAULT_SEGMENT[family]}"
    assert os.path.isfile(os.path.join(out, "1", "model.pt")), f"{family}: no 1/model.pt"
    assert os.path.isfile(os.path.join(out, "labels.txt")) == has_labels, f"{family}: labels.txt"
    left = sorted(e for e in os.listdir(repo) if e != family)
    assert not left, f"{family}: left beside the model folder: {left}"
    assert sorted(os.listdir(out)) == sorted(["1", "config.pbtxt"] + (["labels.txt"] if has_labels else [])), \
        f"{family}: folder holds {sorted(os.listdir(out))}"

    print(f"[export_stack] {family}: exported ({', '.join(names)})", flush=True)
    if family not in PUBLISHING_CHECKED:
        return
    # An existing version is replaced only with --force.
    r = run(export_cmd(family, ckpt, out, fmt(export_args) + ["--max-batch-size", "3"]))
    assert r.returncode != 0 and "--force" in r.stderr, f"{family}: re-export without --force:\n{r.stderr}"
    must(run(export_cmd(family, ckpt, out, fmt(export_args) + ["--max-batch-size", "3", "--force"])),
         f"export {family} --force")
    with open(os.path.join(out, "config.pbtxt"), encoding="utf-8") as f:
        config = text_format.Parse(f.read(), pb.ModelConfig())
    assert config.batching.max_batch_size == 3, f"{family}: --force did not replace the config"
    assert sorted(os.listdir(repo)) == [family], f"{family}: left after --force: {sorted(os.listdir(repo))}"
    print(f"[export_stack] {family}: publishing rules ok", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--keep", help="work in this folder and keep it")
    p.add_argument("families", nargs="*", default=list(FAMILIES))
    a = p.parse_args()
    wd = a.keep or tempfile.mkdtemp(prefix="export_stack_")
    os.makedirs(wd, exist_ok=True)
    try:
        for family in a.families:
            check_family(family, wd)
    except AssertionError as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        if not a.keep:
            shutil.rmtree(wd, ignore_errors=True)
    print("[export_stack] all families ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
