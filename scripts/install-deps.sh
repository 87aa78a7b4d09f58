#!/usr/bin/env bash
# Installs everything audiotag needs from Debian bookworm packages.
# Shared by the Makefile, CI (.ci/run) and docker/Dockerfile. Idempotent: a
# second run installs nothing and returns quickly.
#
#   scripts/install-deps.sh            build + test + offline tools
#   scripts/install-deps.sh --runtime  only the shared libraries the server needs
#   scripts/install-deps.sh --hardening  build + test + what scripts/ci-hardening.sh
#                                        adds (clang, libFuzzer/ASan runtimes,
#                                        llvm-symbolizer)
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libtorch-dev libopenblas0-pthread
  libavformat-dev libavcodec-dev libswresample-dev libavutil-dev
  prometheus-cpp-dev libmicrohttpd-dev libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev libcurl4-openssl-dev clang-format ccache
)
TEST_PACKAGES=(
  ffmpeg sox procps openssl
  python3 python3-torch python3-torchaudio python3-numpy python3-protobuf
  fluidsynth fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont
  yamllint python3-yaml
  python3-grpcio python3-grpc-tools python3-protobuf
)
HARDENING_PACKAGES=(
  clang-14 libclang-rt-14-dev llvm-14
)
RUNTIME_PACKAGES=(
  libgrpc++1.51 libprotobuf32 libtorch1.13 libopenblas0-pthread
  libavformat59 libavcodec59 libswresample4 libavutil57
  libprometheus-cpp-core1.0 libmicrohttpd12 libssl3 libcurl4 ca-certificates
)

if [[ "${1:-}" == "--runtime" ]]; then
  wanted=("${RUNTIME_PACKAGES[@]}")
elif [[ "${1:-}" == "--hardening" ]]; then
  wanted=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${HARDENING_PACKAGES[@]}")
else
  wanted=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
fi

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#wanted[@]} packages present"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo" >&2; exit 1; }
  SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
