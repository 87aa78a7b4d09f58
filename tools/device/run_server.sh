#!/bin/bash
# The whole server on a GPU: builds audiotag-server and the audiotag CLI
# against the CUDA LibTorch of the GPU machine (the pip torch there), with
# gRPC, Protobuf, Abseil, FFmpeg and prometheus-cpp from Debian bookworm's
# .debs unpacked into a prefix (nothing is installed), serves the
# VGGish-sized benchmark model on `instances { device: "cuda" }` (its
# log-mel front-end runs on the GPU too), and drives it with `audiotag bench`
# on the same machine. It prints, and writes to $OUT/gpu_server.md:
#   - the bare batched forward on the GPU (audiotag_forward_bench, built by
#     tools/device/CMakeLists.txt as run.sh does), the ceiling;
#   - served segments/s at several concurrencies, and the ratio to the
#     ceiling (goal >= 0.9);
#   - the same with the server pinned to fewer CPU cores (taskset), to show
#     how many cores the per-request path (gRPC, decode, segmenting,
#     batching) needs to keep the GPU busy.
#
#   tools/device/run_server.sh --fetch
#       here, on Debian bookworm: apt-get download the build closure into
#       tools/device/server-debs (ignored by git), and pack what a build
#       needs of it (headers, shared libraries, CMake and pkg-config files,
#       protoc and grpc_cpp_plugin; no static libraries, docs or fonts) into
#       tools/device/server-debs/prefix.tar.xz: the .debs are ~130 MB, over
#       the 64 MiB a device call carries, so carry only the tarball (copy it
#       into a carried, git-ignored folder of the checkout).
#   bash tools/device/run_server.sh
#       there, with tools/device/server-debs/prefix.tar.xz carried.
#   tools/device/run_server.sh --cpu BUILD_DIR
#       here: the same measurement on the CPU with an existing build (a
#       tiny model, short runs), to test the script itself.
#
# Environment: SECONDS_PER_RUN (default 20; --cpu 3), CONCURRENCY (default
# "16 64 128"; --cpu "4"), CORES (default "2 4 8"; --cpu "1"), CLIP
# (seconds per request, default 10), OUT (default /tmp).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
debdir="$here/server-debs"
# What the build needs beyond the GPU machine's own toolchain and torch.
dev_packages=(libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler libabsl-dev libavformat-dev libavcodec-dev
  libswresample-dev libavutil-dev prometheus-cpp-dev)
# Present on any Linux that can run the build; never unpacked over it.
base_packages='^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libgcc-s1|libstdc\+\+6|gcc-12-base|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc3|libtirpc-dev|libtirpc-common|libgssapi-krb5-2|libkrb5-3|libk5crypto3|libkrb5support0|libkeyutils1|libcom-err2|debconf|perl-base|dpkg|tar|libselinux1|libpcre2-8-0|zlib1g|libzstd1|liblzma5|libbz2-1.0|libssl3|libssl-dev|libudev1|libcap2|libsystemd0|libgcrypt20|libgpg-error0|liblz4-1|libdbus-1-3|libexpat1|libffi8|libuuid1|libblkid1|libmount1|libglib2.0-0)$'

if [[ "${1:-}" == --fetch ]]; then
  mkdir -p "$debdir" && cd "$debdir" || exit 1
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${dev_packages[@]}" |
    grep '^[a-z0-9]' | sort -u | grep -Ev "$base_packages" > packages.txt
  xargs apt-get download < packages.txt || exit 1
  stage=$(mktemp -d) && for f in *.deb; do dpkg -x "$f" "$stage"; done
  find "$stage" -name '*.a' -delete
  rm -rf "$stage/usr/share/doc" "$stage/usr/share/man" "$stage/usr/share/fonts" \
    "$stage/usr/share/locale" "$stage/usr/share/texmf"
  tar -C "$stage" -cf - usr | xz -T2 -6 > prefix.tar.xz && rm -rf "$stage"
  du -h prefix.tar.xz
  echo "carry prefix.tar.xz (a device call takes 64 MiB in all, checkout included)"
  exit 0
fi

out="${OUT:-/tmp}"
mode=gpu
if [[ "${1:-}" == --cpu ]]; then
  mode=cpu
  build="$(cd "${2:?usage: run_server.sh --cpu BUILD_DIR}" && pwd)"
fi
seconds="${SECONDS_PER_RUN:-$([[ $mode == cpu ]] && echo 3 || echo 20)}"
concurrency="${CONCURRENCY:-$([[ $mode == cpu ]] && echo 4 || echo '16 64 128')}"
cores="${CORES:-$([[ $mode == cpu ]] && echo 1 || echo '2 4 8')}"
clip="${CLIP:-10}"
report="$out/gpu_server.md"
: > "$report"
say() { echo "$*" | tee -a "$report"; }

if [[ $mode == gpu ]]; then
  nvidia-smi -L
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
  prefix=/tmp/deb
  mkdir -p "$prefix"
  if [[ -f "$debdir/prefix.tar.xz" ]]; then
    tar -C "$prefix" -xJf "$debdir/prefix.tar.xz" || exit 1
  else
    for f in "$debdir"/*.deb; do dpkg -x "$f" "$prefix"; done
  fi
  lib="$prefix/usr/lib/x86_64-linux-gnu"
  export LD_LIBRARY_PATH="$lib:${LD_LIBRARY_PATH:-}"
  export PATH="$prefix/usr/bin:$PATH"
  export PKG_CONFIG_PATH="$lib/pkgconfig:$prefix/usr/share/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$prefix"
  torch_dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
  build=/tmp/audiotag-gpu
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DAUDIOTAG_BUILD_TESTS=OFF -DAUDIOTAG_BUILD_BENCH=OFF \
    -DCMAKE_PREFIX_PATH="$torch_dir;$prefix/usr;$lib/cmake" \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
    -DProtobuf_PROTOC_EXECUTABLE="$prefix/usr/bin/protoc" \
    -DProtobuf_INCLUDE_DIR="$prefix/usr/include" \
    -DProtobuf_LIBRARY="$lib/libprotobuf.so" \
    > "$out/server_cmake.log" 2>&1 || { tail -40 "$out/server_cmake.log"; exit 1; }
  ninja -C "$build" audiotag-server audiotag > "$out/server_build.log" 2>&1 ||
    { grep -m5 -A10 error "$out/server_build.log"; exit 1; }
  # The bare forward from the model-layer build (no gRPC or FFmpeg in it).
  cmake -S "$here" -B /tmp/audiotag-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$torch_dir;$prefix/usr" \
    -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
    -DProtobuf_PROTOC_EXECUTABLE="$prefix/usr/bin/protoc" \
    -DProtobuf_INCLUDE_DIR="$prefix/usr/include" \
    -DProtobuf_LIBRARY="$lib/libprotobuf.so" \
    > "$out/device_cmake.log" 2>&1 || { tail -40 "$out/device_cmake.log"; exit 1; }
  ninja -C /tmp/audiotag-device audiotag_forward_bench \
    > "$out/device_build.log" 2>&1 ||
    { grep -m5 -A10 error "$out/device_build.log"; exit 1; }
  forward_bench=/tmp/audiotag-device/bin/audiotag_forward_bench
  python=python3
  size=full
  max_batch=128
  batch_sizes=32,64,128,256
else
  forward_bench="$build/bin/audiotag_forward_bench"
  python=/usr/bin/python3
  size=tiny
  max_batch=16
  batch_sizes=4,16
fi
bin="$build/bin"

repo=$(mktemp -d /tmp/audiotag-gpu-models.XXXX)
"$python" "$root/tools/bench/make_bench_model.py" --out "$repo" --size "$size" \
  --max_batch_size "$max_batch" >/dev/null || exit 1
config="$repo/vggish_bench/config.pbtxt"
[[ $mode == gpu ]] && echo 'instances { device: "cuda" }' >> "$config"

ceiling_json=$("$forward_bench" --model_dir="$repo/vggish_bench" \
  --batch_sizes="$batch_sizes" --min_seconds=3 --format=json) || exit 1
ceiling=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["best_segments_per_second"])' <<< "$ceiling_json")
say "# audiotag-server on $mode ($(date -u +%FT%TZ))"
say ""
say "bare batched forward (batch sizes $batch_sizes): best $ceiling segments/s"
say ""
say "| server cores | concurrency | served segments/s | x bare forward | requests/s | p50 ms | p99 ms | mean batch |"
say "|---|---|---|---|---|---|---|---|"

# Starts the server pinned to `$1` cores (all: "all"); sets pid and address.
start_server() {
  local pin=()
  [[ "$1" != all ]] && pin=(taskset -c "0-$(($1 - 1))")
  rm -f "$repo.port"
  metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "${pin[@]}" "$bin/audiotag-server" --port=0 --port_file="$repo.port" \
    --model_repository="$repo" --metrics_port="$metrics_port" \
    > "$out/server_$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    [[ -s "$repo.port" ]] && break
    kill -0 "$pid" 2>/dev/null || { tail -20 "$out/server_$1.log"; return 1; }
    sleep 0.2
  done
  address="127.0.0.1:$(cat "$repo.port")"
  for _ in $(seq 600); do
    "$bin/audiotag" model vggish_bench --server="$address" 2>/dev/null |
      grep -q '"READY"' && return 0
    sleep 0.5
  done
  return 1
}

# One table row from `audiotag bench --format=json` on stdin.
summary='
import json, sys
n, c, ceiling = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(sys.stdin)
h = (r.get("batch_sizes") or {}).get("vggish_bench") or {}
lat = r["latency_seconds"]
sps = r["segments_per_second"]
print("| %s | %s | %.1f | %.2f | %.2f | %.0f | %.0f | %s |" % (
    n, c, sps, sps / ceiling, r["requests_per_second"], lat["p50"] * 1e3,
    lat["p99"] * 1e3, "%.1f" % h["mean"] if h.get("batches") else "n/a"))
'

rc=0
for n in all $cores; do
  start_server "$n" || { rc=1; continue; }
  for c in $concurrency; do
    json=$("$bin/audiotag" bench --server="$address" --synth_seconds="$clip" \
      --concurrency="$c" --duration_seconds="$seconds" --format=json \
      --models=vggish_bench --metrics_url="127.0.0.1:$metrics_port") || rc=1
    python3 -c "$summary" "$n" "$c" "$ceiling" <<< "$json" >> "$report" || rc=1
    tail -1 "$report"
  done
  kill "$pid"; wait "$pid" 2>/dev/null
done
rm -rf "$repo" "$repo.port"
exit $rc
