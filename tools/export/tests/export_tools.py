"""Runs the export tools (tools/export/*.py) inside the test's own process.

Each tool's `main(argv)` is what its command line runs (`sys.exit(main())`),
so calling it here runs the same code as `/usr/bin/python3 tools/export/X.py
ARGS`, without a new interpreter that imports torch again: a second or two per
call on an idle machine, 15-20 s on a loaded 2-core one, and the export tests
make about 30 such calls. Output is captured; the torch thread count and
grad mode the tool changes are put back afterwards, so the reference
computation that follows runs as it would have.
"""

import contextlib
import importlib
import io
import os
import sys
import traceback
from typing import List, NamedTuple

import torch

EXPORT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if EXPORT_DIR not in sys.path:
    sys.path.insert(0, EXPORT_DIR)


class ToolResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_tool(script: str, argv: List[str]) -> ToolResult:
    """`script` is a file name in tools/export ("export.py", "passt.py",
    "make_fake_checkpoint.py", ...); `argv` its arguments. Returns the exit
    code main() gives (or SystemExit carries, e.g. from argparse; 1 with the
    traceback on stderr for an uncaught exception, as the interpreter does)
    and what it printed to stdout and stderr."""
    name = os.path.basename(script)
    if not name.endswith(".py") or not os.path.isfile(os.path.join(EXPORT_DIR, name)):
        raise ValueError(f"not a tool in {EXPORT_DIR}: {script}")
    mod = importlib.import_module(name[:-3])
    out, err = io.StringIO(), io.StringIO()
    threads, grad = torch.get_num_threads(), torch.is_grad_enabled()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = mod.main(list(argv))
            except SystemExit as e:
                rc = e.code
            except Exception:  # what the interpreter would print before exiting 1
                traceback.print_exc()
                rc = 1
        if rc is None:
            rc = 0
        elif not isinstance(rc, int):  # sys.exit("message")
            err.write(f"{rc}\n")
            rc = 1
    finally:
        torch.set_num_threads(threads)
        torch.set_grad_enabled(grad)
    return ToolResult(rc, out.getvalue(), err.getvalue())
