#!/usr/bin/env bash
# audiotag bulk throughput against the server's saturation throughput, in one
# run on one machine: the same catalog, the same server, the same model.
#
#   scripts/bench-bulk.sh BUILD_DIR [TRACKS] [SECONDS_PER_TRACK] [CONCURRENCY]
#
# 1. saturation: `audiotag bench` closed loop over the catalog's files;
# 2. `audiotag bulk` over the same files (fresh output folder);
# prints audio hours per hour and tracks/s of each and the ratio.
set -euo pipefail
BUILD=${1:?build dir}
TRACKS=${2:-48}
SECONDS_PER_TRACK=${3:-30}
CONCURRENCY=${4:-16}
MODELS=${MODELS:-$(cd "$(dirname "$0")/.." && pwd)/models}
WORK=$(mktemp -d /tmp/audiotag-bench-bulk.XXXXXX)
trap 'kill ${SERVER_PID:-0} 2>/dev/null || true; rm -rf "$WORK"' EXIT

mkdir -p "$WORK/catalog"
for i in $(seq 1 "$TRACKS"); do
  f=$((110 + 37 * i))
  ffmpeg -v error -f lavfi -i "sine=frequency=$f:duration=$SECONDS_PER_TRACK:sample_rate=44100" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.05:duration=$SECONDS_PER_TRACK:sample_rate=44100:seed=$i" \
    -filter_complex amix=inputs=2 -ac 2 -b:a 128k "$WORK/catalog/track$i.mp3"
done

"$BUILD/bin/audiotag-server" --port=0 --port_file="$WORK/port" --metrics_port=0 \
  --model_repository="$MODELS" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do [[ -s "$WORK/port" ]] && break; sleep 0.1; done
SERVER="127.0.0.1:$(cat "$WORK/port")"
FILES=$(ls "$WORK"/catalog/*.mp3 | paste -sd, -)

# Saturation: every file once per client pass, as many passes as fit.
"$BUILD/bin/audiotag" bench --server="$SERVER" --audio="$FILES" --priority=bulk \
  --concurrency="$CONCURRENCY" --requests="$TRACKS" --format=json >"$WORK/bench.json"
"$BUILD/bin/audiotag" bulk --server="$SERVER" --input_dir="$WORK/catalog" \
  --output="$WORK/out" --concurrency="$CONCURRENCY" --embeddings=pooled \
  2>"$WORK/bulk.log"

/usr/bin/python3 - "$WORK" "$TRACKS" "$SECONDS_PER_TRACK" <<'PY'
import json, sys
work, tracks, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
bench = json.load(open(f"{work}/bench.json"))
summary = json.load(open(f"{work}/out/summary.json"))
def find(d, *names):
    for n in names:
        if n in d: return d[n]
    for v in d.values():
        if isinstance(v, dict):
            r = find(v, *names)
            if r is not None: return r
    return None
sat_audio = find(bench, "audio_seconds_per_second")
sat_rps = find(bench, "requests_per_second")
bulk_tps = find(summary, "tracks_per_second")
bulk_ahh = find(summary, "audio_hours_per_hour")
print(f"catalog: {tracks} tracks x {seconds:.0f} s")
print(f"server saturation (audiotag bench): {sat_rps:.2f} tracks/s, {sat_audio*1.0:.1f} audio h/h")
print(f"audiotag bulk:                      {bulk_tps:.2f} tracks/s, {bulk_ahh:.1f} audio h/h")
print(f"ratio bulk / saturation: {bulk_ahh / sat_audio:.2f}")
PY
