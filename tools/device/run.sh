#!/bin/bash
# The GPU check: builds audiotag's model layer against the CUDA LibTorch of a
# machine with an NVIDIA GPU (the pip torch there), then
#   1. device_check: the same batch through TorchRunner on cpu and on cuda,
#      outputs compared (the VGGish-sized benchmark model and the default
#      student);
#   2. audiotag_forward_bench on cuda, and on that machine's CPU cores as the
#      baseline of the same run.
# Needs python3 with a CUDA torch, cmake, ninja, g++ and nvcc there. Debian's
# protobuf and Abseil come as .debs unpacked into /tmp/deb (nothing is
# installed); fetch them here first, on a Debian bookworm machine:
#
#   tools/device/run.sh --fetch      # apt-get download into tools/device/debs
#
# then run `bash tools/device/run.sh` on the GPU machine with tools/device/debs
# carried along. Logs go to $OUT (or /tmp).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
debs=(libprotobuf-dev libprotobuf32 protobuf-compiler libprotoc32 libabsl-dev
      libabsl20220623)
if [[ "${1:-}" == --fetch ]]; then
  mkdir -p "$here/debs" && cd "$here/debs" && exec apt-get download "${debs[@]}"
fi
out="${OUT:-/tmp}"
cd "$here"
nvidia-smi -L
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
mkdir -p /tmp/deb && for f in debs/*.deb; do dpkg -x "$f" /tmp/deb; done
export LD_LIBRARY_PATH=/tmp/deb/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
torch_dir=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
cmake -S . -B /tmp/audiotag-device -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_dir;/tmp/deb/usr" \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" \
  -DProtobuf_PROTOC_EXECUTABLE=/tmp/deb/usr/bin/protoc \
  -DProtobuf_INCLUDE_DIR=/tmp/deb/usr/include \
  -DProtobuf_LIBRARY=/tmp/deb/usr/lib/x86_64-linux-gnu/libprotobuf.so \
  > "$out/cmake.log" 2>&1 || { tail -40 "$out/cmake.log"; exit 1; }
ninja -C /tmp/audiotag-device > "$out/build.log" 2>&1 ||
  { grep -m5 -A10 error "$out/build.log"; exit 1; }
bin=/tmp/audiotag-device/bin
repo=/tmp/audiotag-device-models
rm -rf "$repo" && mkdir -p "$repo/cpu" "$repo/cuda"
python3 ../bench/make_bench_model.py --out "$repo/cpu" --max_batch_size 64 || exit 1
cp -r ../../models/openmic_student "$repo/cpu/"
for m in vggish_bench openmic_student; do
  cp -r "$repo/cpu/$m" "$repo/cuda/"
  echo 'instances { device: "cuda" }' >> "$repo/cuda/$m/config.pbtxt"
done
rc=0
"$bin/device_check" "$repo/cpu/vggish_bench" 32 || rc=1
"$bin/device_check" "$repo/cpu/openmic_student" 16 || rc=1
"$bin/audiotag_forward_bench" --model_dir="$repo/cuda/vggish_bench" \
  --batch_sizes=1,8,32,64,128,256 --min_seconds=2 || rc=1
"$bin/audiotag_forward_bench" --model_dir="$repo/cpu/vggish_bench" \
  --batch_sizes=8,32,64 --min_seconds=2 || rc=1
"$bin/audiotag_forward_bench" --model_dir="$repo/cuda/openmic_student" \
  --batch_sizes=1,16,64,256 --min_seconds=2 || rc=1
"$bin/audiotag_forward_bench" --model_dir="$repo/cpu/openmic_student" \
  --batch_sizes=16,64,256 --min_seconds=2 || rc=1
exit $rc
