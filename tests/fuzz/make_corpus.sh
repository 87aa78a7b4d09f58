#!/usr/bin/env bash
# Regenerates the committed seed corpora in tests/fuzz/corpus/<target>/.
# Needs the ffmpeg CLI and protoc. The files are small on purpose (< 1 MB in
# all); rerun only when a seed should change, and commit the result.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$here/corpus"
rm -rf "$out"
mkdir -p "$out/decoder_fuzzer" "$out/config_fuzzer" "$out/request_fuzzer"

# decoder_fuzzer: 0.1-0.25 s tones in each container the server supports.
tone() {  # tone <rate> <channels> <seconds> <file> [ffmpeg output args...]
  local rate=$1 ch=$2 sec=$3 file=$4
  shift 4
  ffmpeg -nostdin -loglevel error -y -f lavfi \
    -i "sine=frequency=440:sample_rate=${rate}:duration=${sec}" \
    -ac "$ch" "$@" "$out/decoder_fuzzer/$file"
}
tone 8000 1 0.1 s16_8k_mono.wav
tone 16000 2 0.1 f32_16k_stereo.wav -c:a pcm_f32le
tone 8000 1 0.1 u8_8k.wav -c:a pcm_u8
tone 8000 1 0.1 alaw.wav -c:a pcm_alaw
tone 16000 1 0.1 mono.flac
tone 22050 2 0.2 stereo.mp3 -b:a 32k
tone 16000 1 0.2 mono.ogg -c:a libvorbis -q:a 0
tone 16000 1 0.2 mono.opus -c:a libopus -b:a 16k
tone 16000 1 0.2 mono.m4a -c:a aac -b:a 24k
tone 8000 1 0.1 mono.aiff
tone 8000 1 0.1 mono.au
tone 8000 1 0.2 mono.mka -c:a pcm_s16le
tone 16000 1 0.1 with_id3.mp3 -b:a 32k -metadata title=seed -id3v2_version 3

# config_fuzzer: the configs the tests and docs use.
cat > "$out/config_fuzzer/stats.pbtxt" <<'PB'
description: "segment statistics"
input { sample_rate: 16000 waveform {} }
segment { window_samples: 16000 hop_samples: 16000 }
output { name: "stats" kind: EMBEDDING source: "0" dim: 4 }
output { name: "levels" kind: TAGS source: "1" dim: 3 }
output { name: "timeline" kind: ACTIVATIONS source: "1" dim: 3 }
batching { max_batch_size: 4 max_queue_delay_us: 1000 }
PB
python3 - "$repo/tests/features/reference_configs.h" "$out/config_fuzzer" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for name, body in re.findall(r'k(\w+)Config\[\] = R"pb\((.*?)\)pb"', text, re.S):
    config = ("input {%s}\nsegment { window_samples: 16000 }\n"
              'output { name: "t" kind: TAGS dim: 2 labels_file: "" }\n'
              "instances { count: 1 device: \"cpu\" }\n" % body)
    open("%s/%s.pbtxt" % (sys.argv[2], name.lower()), "w").write(config)
PY
printf 'input { sample_rate: 16000 waveform { gain: 2 } layout: LAYOUT_BCT }\nsegment { window_samples: 8000 hop_samples: 4000 pad_last: true }\noutput { name: "e" kind: EMBEDDING dim: 8 }\nwarmup_batches: 0\nversion_policy { version: 2 }\n' \
  > "$out/config_fuzzer/waveform.pbtxt"

# request_fuzzer: serialized AnalyzeRequests (audio bytes double as the
# segment outputs the fuzzer aggregates).
encode() {  # encode <file> <text-format AnalyzeRequest>
  printf '%s' "$2" | protoc --encode=audiotag.v1.AnalyzeRequest \
    -I "$repo/proto" "$repo/proto/audiotag/v1/audiotag.proto" \
    > "$out/request_fuzzer/$1"
}
encode default.bin 'audio: "\003\000\000\000?\000\000\200?\315\314L>"'
encode top3.bin 'audio: "\005\001\002\003\004\005\006\007\010" options { models: "stats" top_k: 3 threshold: 0.1 }'
encode all_max.bin 'audio: "\004\377\377\377\177\000\000\200\177\000\000\200\377" options { top_k: -1 pooling: POOLING_MAX outputs { tags: true segment_embeddings: true } }'
encode bulk.bin 'options { priority: PRIORITY_BULK request_id: "r-1" outputs { activations: true } }'
encode bad_topk.bin 'options { top_k: -5 threshold: -1 }'
