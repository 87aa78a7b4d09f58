#!/usr/bin/env bash
# Runs audiotag's benchmarks against a real server and prints a markdown
# table (also written to --out, default BUILD_DIR/benchmarks.md).
#
#   scripts/run-benchmarks.sh BUILD_DIR [--suite standard|per_request]
#       [--quick] [--out FILE] [--cell_seconds S] [--max_cell_seconds S]
#       [--keep]
#
# Needs BUILD_DIR/bin/{audiotag,audiotag-server,audiotag_forward_bench} and
# a python3 with torch (Debian's /usr/bin/python3) to write the model; the
# per_request suite also needs the ffmpeg CLI (mp3 clips).
# --suite per_request: audiotag against a per-request baseline (no
# cross-request batching), WAV and mp3, closed and open loop, plus the
# per-stage times of one request.
# --quick: a tiny model and 2-second cells, for smoke tests (a few minutes).
# See docs/performance.md for what each row measures.
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
  sed -n '2,16p' "$0" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${AUDIOTAG_TORCH_PYTHON:-/usr/bin/python3}"
if ! "$python" -c 'import torch' 2>/dev/null; then
  python=python3
fi
exec "$python" "$here/tools/bench/run_benchmarks.py" --source_dir "$here" \
  --build_dir "$@"
