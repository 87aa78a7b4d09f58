#!/bin/bash
# Build the default instrument-recognition student end to end: render solo
# stems and multi-part clips with the three permitted GM soundfonts and our
# own synthesisers, train with stems mixed on the fly, leave-one-source-out
# evaluation, calibrate, export models/openmic_student, measure speed.
#
#   tools/train/build_default_model.sh           # full run (about 2 hours on 2 cores)
#   tools/train/build_default_model.sh --tiny    # smoke test (about a minute)
#
# Sources: FluidR3_GM, MuseScore_General, TimGM6mb and `synth` (our own
# synthesisers, build_dataset.py --font synth; skipped with a note when this
# checkout's build_dataset.py has no synth source). Per source, in $DATA:
#   stems_<src>.npz   solo clips of every class (--solo all), augmented
#   clips_<src>.npz   multi-part clips (1-4 instruments), augmented
#   evsolo_<src>.npz  solo clips of every class, NOT augmented (evaluation)
#   evmix_<src>.npz   multi-part clips, NOT augmented (evaluation)
# Runs, each in $WORK/<run>/ (student.pt, calibration.json, eval.json/.md):
#   lofo_<font>  for each of the three fonts: trained on the other sources'
#                stems + clips (synth included), calibrated on the other
#                sources' evaluation sets (new seeds), evaluated on the
#                held-out font's evsolo + evmix; two folds run at a time
#                (one torch thread each), LOFO_BUDGET seconds each
#   loso_synth   the same with synth held out (trained on the three fonts)
#   ship         all sources, TRAIN_BUDGET seconds, THREADS threads;
#                calibrated on every source's evaluation sets; exported to
#                $OUT with the calibration, parity data, bench.py speed of the
#                previous and the new model
# Tables: $WORK/lofo.md (the three font folds; calibration from the training
# sources' new seeds), $WORK/lofo_nested.md (each font fold calibrated on the
# OTHER font folds' held-out predictions: how thresholds fit on unseen banks
# transfer) and $WORK/losyn.md (synth held out: loso_synth and the LOSYN folds).
#
# Environment (defaults in brackets):
#   WORK [build-default-model | build-default-model-tiny]  scratch folder
#   DATA [$WORK/data]  rendered training sets; existing files are reused
#                (delete to re-render), so ablation runs can share one DATA
#   EVDATA [$DATA]  rendered evaluation sets (likewise; share them between
#                ablations that re-render the training data)
#   OUT [models/openmic_student; tiny: $WORK/openmic_student]  model folder
#   PARITY [tests/data/openmic_student_parity.json; tiny: in $WORK]
#   JOBS [2] render processes; THREADS [2] torch threads of the ship run
#   TRAIN_BUDGET [2400] ship training seconds; LOFO_BUDGET [1200] per fold
#   N_STEM [900] N_CLIPS [300] N_EVSOLO [120] N_EVMIX [150] clips per source
#   STEMSEC [6] CLIPSEC [8] EVSEC [6] clip lengths in seconds
#   WIDTHS [16,32,64,192] network widths (model.py)
# Switches for ablations (each 0/1 unless noted):
#   LOFO [1]       run the three leave-one-font-out folds
#   LOSO [1]       run the leave-synth-out fold (needs USE_SYNTH=1)
#   LOSYN [""]     comma-separated synthesiser names or family prefixes
#                  (e.g. "ks,bowed,wind,brass"): one leave-one-synthesiser-
#                  out fold each, table $WORK/losyn.md
#   SHIP [1]       train, calibrate, export and bench the shipped model
#   USE_SYNTH [1]  use the synth source (training and evaluation)
#   USE_STEMS [1]  train on stems mixed on the fly (0: multi-part clips only)
#   USE_CLIPS [1]  train on multi-part clips too (0: stems only)
#   NEW_AUG [1]    feature-domain colourations (0: train.py --p-eq 0)
#   INPUT_NORM [none]  none | tilt (in-network tilt normalisation, model.py)
#   CALIBRATE [1]  write the calibration into the exported config
#   CALIB_FROM [newseeds]  ship calibration fit on: newseeds (every source's
#                  evaluation sets) | lofo (the folds' held-out predictions)
#   TRAIN_EXTRA    extra train.py arguments (e.g. "--mix-counts 1,1,1,1")
#   RENDER_EXTRA   extra build_dataset.py arguments for the augmented
#                  training renders (e.g. "--no-performance")
# An ablation that changes only training reuses the data of the main run:
#   DATA=build-default-model/data WORK=build-abl-noaug SHIP=0 NEW_AUG=0 \
#     tools/train/build_default_model.sh
# CTest runs the smoke test as `default_model_pipeline_tiny` with WORK set to
# a folder of the build tree (tests/train/CMakeLists.txt); in tiny mode OUT
# may never be models/openmic_student (the shipped model).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-/usr/bin/python3}
NICE="nice -n 19"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
TINY=0
[[ "${1:-}" == "--tiny" ]] && TINY=1
JOBS=${JOBS:-2}
THREADS=${THREADS:-2}
LOFO=${LOFO:-1}; LOSO=${LOSO:-1}; SHIP=${SHIP:-1}
USE_SYNTH=${USE_SYNTH:-1}; USE_STEMS=${USE_STEMS:-1}; USE_CLIPS=${USE_CLIPS:-1}
NEW_AUG=${NEW_AUG:-1}; INPUT_NORM=${INPUT_NORM:-none}
CALIBRATE=${CALIBRATE:-1}; CALIB_FROM=${CALIB_FROM:-newseeds}
TRAIN_EXTRA=${TRAIN_EXTRA:-}; RENDER_EXTRA=${RENDER_EXTRA:-}; LOSYN=${LOSYN:-}
WIDTHS=${WIDTHS:-16,32,64,192}
FONTS=(FluidR3_GM MuseScore_General TimGM6mb)

if [[ $TINY == 1 ]]; then
  WORK=${WORK:-build-default-model-tiny}
  OUT=${OUT:-$WORK/openmic_student}
  PARITY=${PARITY:-$WORK/openmic_student_parity.json}
  # the sf3 font takes 5-30 s to load: the smoke test trains on FluidR3_GM
  # (+ synth) and holds out TimGM6mb in its one LOFO fold; multi-part
  # training clips of FluidR3_GM only
  FONTS=(FluidR3_GM TimGM6mb)
  N_STEM=${N_STEM:-20}; N_CLIPS=${N_CLIPS:-6}; N_EVSOLO=${N_EVSOLO:-20}; N_EVMIX=${N_EVMIX:-6}
  STEMSEC=3; CLIPSEC=4; EVSEC=2; BATCH=20
  SHIP_ARGS="--steps 6 --batch 16"; FOLD_ARGS="--steps 6 --batch 16"
  MIN_POS=2
  shipped=$(realpath -m models/openmic_student)
  if [[ $(realpath -m "$OUT") == "$shipped" ]]; then
    echo "--tiny must not overwrite the shipped model $shipped: set OUT elsewhere" >&2
    exit 2
  fi
else
  WORK=${WORK:-build-default-model}
  OUT=${OUT:-models/openmic_student}
  PARITY=${PARITY:-tests/data/openmic_student_parity.json}
  N_STEM=${N_STEM:-900}; N_CLIPS=${N_CLIPS:-300}; N_EVSOLO=${N_EVSOLO:-120}
  N_EVMIX=${N_EVMIX:-150}
  STEMSEC=${STEMSEC:-6}; CLIPSEC=${CLIPSEC:-8}; EVSEC=${EVSEC:-6}; BATCH=100
  # The learning-rate schedule follows wall time, so runs end on time on a
  # contended machine; SHIP_ARGS/FOLD_ARGS="--steps N" for a step-exact rerun.
  SHIP_ARGS=${SHIP_ARGS:-"--steps 1000000 --time-budget ${TRAIN_BUDGET:-2400}"}
  FOLD_ARGS=${FOLD_ARGS:-"--steps 1000000 --time-budget ${LOFO_BUDGET:-1200}"}
  MIN_POS=20
fi
DATA=${DATA:-$WORK/data}
EVDATA=${EVDATA:-$DATA}
mkdir -p "$DATA" "$EVDATA" "$WORK"

SOURCES=("${FONTS[@]}")
if [[ $USE_SYNTH == 1 ]]; then
  if $PY tools/synth/build_dataset.py --help 2>/dev/null | grep -Eq "[{,]synth[,}]"; then
    SOURCES+=(synth)
  else
    echo "note: tools/synth/build_dataset.py has no 'synth' source here: training on soundfonts only"
    USE_SYNTH=0
  fi
fi
[[ $USE_SYNTH == 1 ]] || LOSO=0
echo "sources: ${SOURCES[*]}; LOFO=$LOFO LOSO=$LOSO SHIP=$SHIP USE_STEMS=$USE_STEMS" \
     "USE_CLIPS=$USE_CLIPS NEW_AUG=$NEW_AUG INPUT_NORM=$INPUT_NORM WIDTHS=$WIDTHS"

seed_base() {  # source -> 10, 20, 30, 40 (seeds base+1..4; none used before)
  case $1 in FluidR3_GM) echo 10;; MuseScore_General) echo 20;; TimGM6mb) echo 30;;
             synth) echo 40;; esac
}

build() {  # folder name source seed clips seconds extra-args...
  local dir=$1 name=$2 src=$3 seed=$4 n=$5 sec=$6; shift 6
  if [[ ! -f $dir/$name.npz ]]; then
    $NICE $PY tools/synth/build_dataset.py --font "$src" --seed "$seed" --clips "$n" \
      --clip-seconds "$sec" --batch-clips $BATCH --jobs $JOBS --out "$dir/$name.npz" "$@"
  fi
}

start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }
# --- data ---
render_source() {  # all sets of one source
  local src=$1 b
  b=$(seed_base "$src")
  if [[ $USE_STEMS == 1 ]]; then
    # shellcheck disable=SC2086
    build "$DATA" stems_$src "$src" $((b + 1)) $N_STEM $STEMSEC --solo all $RENDER_EXTRA
  fi
  if [[ ( $USE_CLIPS == 1 || $USE_STEMS == 0 ) && ( $TINY == 0 || $src == FluidR3_GM ) ]]; then
    # shellcheck disable=SC2086
    build "$DATA" clips_$src "$src" $((b + 2)) $N_CLIPS $CLIPSEC $RENDER_EXTRA
  fi
  build "$EVDATA" evsolo_$src "$src" $((b + 3)) $N_EVSOLO $EVSEC --solo all --no-augment
  build "$EVDATA" evmix_$src "$src" $((b + 4)) $N_EVMIX $EVSEC --no-augment
  stamp "data of $src done"
}
if [[ $TINY == 1 ]]; then  # one batch per set: the sources in parallel
  pids=()
  for src in "${SOURCES[@]}"; do render_source "$src" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
else  # every set in --jobs $JOBS batches at a time
  for src in "${SOURCES[@]}"; do render_source "$src"; done
fi

COMMON=(--widths "$WIDTHS" --input-norm "$INPUT_NORM")
[[ $NEW_AUG == 0 ]] && COMMON+=(--p-eq 0)
# shellcheck disable=SC2206
[[ -n $TRAIN_EXTRA ]] && COMMON+=($TRAIN_EXTRA)

train_args() {  # sources... -> --train/--stems arguments
  local s tr=() st=()
  for s in "$@"; do
    [[ -f $DATA/clips_$s.npz && ( $USE_CLIPS == 1 || $USE_STEMS == 0 ) ]] && tr+=("$DATA/clips_$s.npz")
    [[ $USE_STEMS == 1 ]] && st+=("$DATA/stems_$s.npz")
  done
  [[ ${#tr[@]} -gt 0 ]] && echo -n "--train ${tr[*]} "
  [[ ${#st[@]} -gt 0 ]] && echo -n "--stems ${st[*]}"
  echo
}

eval_sets() {  # sources... -> evaluation set paths (evsolo, evmix of each)
  local s
  for s in "$@"; do echo -n "$EVDATA/evsolo_$s.npz $EVDATA/evmix_$s.npz "; done
  echo
}

# run_fold NAME HELD_OUT THREADS TRAIN_ARGS [SYNTH]: train on every source
# but HELD_OUT, calibrate on the training sources' evaluation sets, evaluate
# on HELD_OUT (scores saved for the nested calibration). With SYNTH (a
# synthesiser name or family prefix; HELD_OUT is then `synth`): train on every
# source, leaving out only the clips that synthesiser rendered, calibrate on
# the fonts' evaluation sets, evaluate on its synth clips.
run_fold() {
  local name=$1 held=$2 threads=$3 targs=$4 syn=${5:-} dir=$WORK/$1 s others=() cal=()
  local only=() exclude=()
  for s in "${SOURCES[@]}"; do [[ $s != "$held" ]] && others+=("$s"); done
  cal=("${others[@]}")
  if [[ -n $syn ]]; then
    others=("${SOURCES[@]}")
    exclude=(--exclude-synth "$syn")
    only=(--only-synth "$syn")
  fi
  mkdir -p "$dir"
  # shellcheck disable=SC2046,SC2086
  if ! $NICE $PY tools/train/train.py --threads $threads $targs "${COMMON[@]}" "${exclude[@]}" \
      $(train_args "${others[@]}") --out "$dir/student.pt" > "$dir/train.log" 2>&1; then
    echo "$name: train.py failed ($dir/train.log):" >&2
    tail -20 "$dir/train.log" >&2
    return 1
  fi
  # shellcheck disable=SC2046
  $NICE $PY tools/train/calibrate.py --model "$dir/student.pt" --min-positives $MIN_POS \
    --sets $(eval_sets "${cal[@]}") --out "$dir/calibration.json" > "$dir/calibrate.log"
  $NICE $PY tools/train/evaluate.py --model "$dir/student.pt" "${only[@]}" \
    --calibration "$dir/calibration.json" --save-scores "$dir/scores" \
    --solo "held-out $held${syn:+ $syn} solo=$EVDATA/evsolo_$held.npz" \
    --sets "held-out $held${syn:+ $syn} mixtures=$EVDATA/evmix_$held.npz" \
    --out "$dir/eval.json" --markdown "$dir/eval.md" > "$dir/eval.log"
  stamp "$name done: $(grep -h 'solo top-1\|recall@k' "$dir/eval.log" | tr '\n' ' ')"
}

# --- leave-one-source-out ---
# FOLDS: the font folds (table lofo.md); SYN_FOLDS: synth held out as a
# whole and per synthesiser (table losyn.md). Entries name:held-out[:synth].
FOLDS=()
[[ $LOFO == 1 ]] && for f in "${FONTS[@]}"; do FOLDS+=("lofo_$f:$f"); done
SYN_FOLDS=()
[[ $LOSO == 1 ]] && SYN_FOLDS+=("loso_synth:synth")
if [[ $USE_SYNTH == 1 && -n $LOSYN ]]; then
  for syn in ${LOSYN//,/ }; do SYN_FOLDS+=("losyn_$syn:synth:$syn"); done
fi
if [[ $TINY == 1 ]]; then  # one fold: hold out TimGM6mb
  FOLDS=(); [[ $LOFO == 1 ]] && FOLDS=("lofo_TimGM6mb:TimGM6mb")
  [[ -z $LOSYN ]] && SYN_FOLDS=()
fi
RUNS=("${FOLDS[@]}" "${SYN_FOLDS[@]}")
i=0
while [[ $i -lt ${#RUNS[@]} ]]; do  # two folds at a time, one thread each
  pids=()
  for j in $i $((i + 1)); do
    [[ $j -lt ${#RUNS[@]} ]] || continue
    IFS=: read -r name held syn <<< "${RUNS[$j]}"
    run_fold "$name" "$held" 1 "$FOLD_ARGS" "$syn" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done  # a failed fold stops the script (set -e)
  i=$((i + 2))
done
if [[ ${#SYN_FOLDS[@]} -gt 0 ]]; then
  # shellcheck disable=SC2046
  $PY tools/train/evaluate.py --combine $(for f in "${SYN_FOLDS[@]}"; do
      IFS=: read -r name held syn <<< "$f"; echo "${syn:-synth}=$WORK/$name/eval.json"; done) \
    --markdown "$WORK/losyn.md" > /dev/null
  stamp "synth held out (whole / per synthesiser): $WORK/losyn.md"
fi
if [[ ${#FOLDS[@]} -gt 0 ]]; then
  combine=() nested=()
  for fold in "${FOLDS[@]}"; do
    name=${fold%%:*} held=${fold##*:} dir=$WORK/${fold%%:*}
    combine+=("$held=$dir/eval.json")
    # nested calibration: fit on the other font folds' held-out predictions
    other_scores=()
    for o in "${FOLDS[@]}"; do
      [[ $o != "$fold" ]] && other_scores+=("$WORK/${o%%:*}"/scores/*.npz)
    done
    if [[ ${#other_scores[@]} -gt 0 ]]; then
      $NICE $PY tools/train/calibrate.py --model "$dir/student.pt" --min-positives $MIN_POS \
        --scores "${other_scores[@]}" --out "$dir/calibration_nested.json" > /dev/null
      $NICE $PY tools/train/evaluate.py --model "$dir/student.pt" \
        --calibration "$dir/calibration_nested.json" \
        --solo "held-out $held solo=$EVDATA/evsolo_$held.npz" \
        --sets "held-out $held mixtures=$EVDATA/evmix_$held.npz" \
        --out "$dir/eval_nested.json" --markdown "$dir/eval_nested.md" > /dev/null
      nested+=("$held=$dir/eval_nested.json")
    fi
  done
  $PY tools/train/evaluate.py --combine "${combine[@]}" --markdown "$WORK/lofo.md" > /dev/null
  [[ ${#nested[@]} -gt 0 ]] && \
    $PY tools/train/evaluate.py --combine "${nested[@]}" --markdown "$WORK/lofo_nested.md" > /dev/null
  stamp "leave-one-source-out table: $WORK/lofo.md$([[ ${#nested[@]} -gt 0 ]] && echo " (nested calibration: $WORK/lofo_nested.md)")"
  cat "$WORK/lofo.md"
fi

# --- the shipped model: all sources ---
if [[ $SHIP == 1 ]]; then
  dir=$WORK/ship
  mkdir -p "$dir"
  # shellcheck disable=SC2046,SC2086
  if ! $NICE $PY tools/train/train.py --threads $THREADS $SHIP_ARGS "${COMMON[@]}" \
      $(train_args "${SOURCES[@]}") --out "$dir/student.pt" > "$dir/train.log" 2>&1; then
    tail -20 "$dir/train.log" >&2
    exit 1
  fi
  grep -v "^step " "$dir/train.log"
  stamp "ship training done (progress: $dir/train.log)"
  if [[ $CALIB_FROM == lofo && ${#FOLDS[@]} -gt 0 ]]; then
    # shellcheck disable=SC2046
    $NICE $PY tools/train/calibrate.py --model "$dir/student.pt" --min-positives $MIN_POS \
      --scores $(for f in "${FOLDS[@]}"; do echo "$WORK/${f%%:*}"/scores/*.npz; done) \
      --out "$dir/calibration.json" | tee "$dir/calibrate.log"
  else
    # shellcheck disable=SC2046
    $NICE $PY tools/train/calibrate.py --model "$dir/student.pt" --min-positives $MIN_POS \
      --sets $(eval_sets "${SOURCES[@]}") --out "$dir/calibration.json" | tee "$dir/calibrate.log"
  fi
  SOLO=() SETS=()
  for s in "${SOURCES[@]}"; do
    SOLO+=("new seeds $s solo=$EVDATA/evsolo_$s.npz")
    SETS+=("new seeds $s mixtures=$EVDATA/evmix_$s.npz")
  done
  $NICE $PY tools/train/evaluate.py --threads "$THREADS" --model "$dir/student.pt" \
    --calibration "$dir/calibration.json" --solo "${SOLO[@]}" --sets "${SETS[@]}" \
    --out "$dir/eval.json" --markdown "$dir/eval.md"
  CAL=()
  [[ $CALIBRATE == 1 ]] && CAL=(--calibration "$dir/calibration.json")
  if [[ $TINY == 0 && -f $OUT/1/model.pt ]]; then
    $NICE $PY tools/train/bench.py --model-dir "$OUT" | tee "$dir/bench_before.txt"
  fi
  $NICE $PY tools/train/export.py --model "$dir/student.pt" --out "$OUT" --parity "$PARITY" \
    "${CAL[@]}"
  if [[ $TINY == 0 ]]; then
    $NICE $PY tools/train/bench.py --model-dir "$OUT" | tee "$dir/bench.txt"
  fi
fi
stamp "all done"
