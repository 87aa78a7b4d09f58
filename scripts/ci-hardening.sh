#!/usr/bin/env bash
# The hardening stage of CI (docs/hardening.md), run after `make test`:
#
#   1. one clang 14 build in its own folder (build-hardening/, shares nothing with
#      build/) with AddressSanitizer + UBSan (-DAUDIOTAG_SANITIZE=ON, UBSan
#      made fatal), -Werror=thread-safety, and libFuzzer coverage
#      instrumentation (-fsanitize=fuzzer-no-link). Building every target is
#      the thread-safety check; one build serves all three uses so that the
#      stage compiles the tree once, not three times;
#   2. the whole CTest suite in that build, except the labels that cannot or
#      need not run under ASan (see EXCLUDED_LABELS);
#   3. a smoke run of each libFuzzer target (tests/fuzz) on its seed corpus.
#
#   scripts/ci-hardening.sh [--lean] [--no-build] [--no-tests] [--no-fuzz]
#                           [--fuzz-seconds N]
#
#   --lean  build only the libraries, the server, the CLI, the fuzzers and the
#           test binaries in LEAN_TESTS (the engine's unit tests with the most
#           concurrency and parsing, and every end-to-end suite), and run only
#           those: about half the compile time. Every file of src/, server/
#           and client/ is still compiled, so the thread-safety check loses
#           only the test helpers.
#
# Environment: BUILD_DIR (default build-hardening), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-hardening}
JOBS=${JOBS:-2}
FUZZ_SECONDS=60
RUN_TESTS=1
RUN_FUZZ=1
LEAN=0
BUILD=1
LEAN_TESTS=(
  decoder_test aggregator_test dynamic_batcher_test dynamic_batcher_stress_test
  request_queue_test task_test model_config_test model_repository_test
  server_e2e_test production_e2e_test bad_input_e2e_test fault_e2e_test
  config_limits_test model_run_test analyzer_test scheduler_factory_test
  mono_resampler_test
)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --fuzz-seconds) FUZZ_SECONDS=$2; shift 2 ;;
    --no-tests) RUN_TESTS=0; shift ;;
    --no-fuzz) RUN_FUZZ=0; shift ;;
    --lean) LEAN=1; shift ;;
    --no-build) BUILD=0; shift ;;
    *) echo "ci-hardening: unknown argument $1" >&2; exit 2 ;;
  esac
done

# Labels left out of the sanitizer run:
#   slow    the Python/LibTorch export parity tests: they run python3 and its
#           own (uninstrumented) torch, so ASan checks none of our code there,
#           and they take minutes.
#   bench   timing runs of the benchmark tools, which this build leaves out
#           (-DAUDIOTAG_BUILD_BENCH=OFF).
#   deploy  offline YAML/Dockerfile checks: no compiled code.
EXCLUDED_LABELS='slow|bench|deploy'

stage_start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - stage_start ))s"; }

scripts/install-deps.sh --hardening

# Sanitizer behaviour, for the build (gtest discovery runs the test binaries),
# the tests and the fuzzers alike.
#   detect_leaks=1       LeakSanitizer on. LibTorch, gRPC and protobuf keep
#                        process-lifetime singletons; what they leave at exit
#                        is suppressed by library in tests/hardening/lsan.supp,
#                        so a leak in audiotag's own code still fails.
#   halt_on_error=1      UBSan stops at the first report (the code is also
#                        built with -fno-sanitize-recover=undefined).
#   symbolize=1          stacks with file:line (llvm-symbolizer-14).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=0:symbolize=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/hardening/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:symbolize=1"
export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14

flags="-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined"
if [[ $BUILD -eq 1 && ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    "-DCMAKE_CXX_COMPILER_LAUNCHER=$PWD/tests/hardening/clang-torch-launcher.sh" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
    "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" \
    "-DCMAKE_CXX_FLAGS=$flags -Werror=thread-safety" \
    "-DCMAKE_C_FLAGS=$flags" \
    -DAUDIOTAG_SANITIZE=ON -DAUDIOTAG_FUZZ=ON -DAUDIOTAG_BUILD_BENCH=OFF
fi
if [[ $BUILD -eq 0 ]]; then
  echo "ci-hardening: --no-build: using $BUILD_DIR as it is"
elif [[ $LEAN -eq 1 ]]; then
  echo "ci-hardening: building (lean; ASan+UBSan, -Werror=thread-safety, fuzzers)"
  cmake --build "$BUILD_DIR" -j "$JOBS" --target audiotag-server audiotag \
    decoder_fuzzer config_fuzzer request_fuzzer "${LEAN_TESTS[@]}"
else
  echo "ci-hardening: building (ASan+UBSan, -Werror=thread-safety, fuzzers)"
  cmake --build "$BUILD_DIR" -j "$JOBS"
fi
echo "ci-hardening: build done at $(elapsed)"

if [[ $RUN_TESTS -eq 1 ]]; then
  # In --lean mode the binaries not built register only a <name>_NOT_BUILT
  # placeholder test: leave those out.
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 900 \
    -LE "$EXCLUDED_LABELS" -E '_NOT_BUILT$'
  echo "ci-hardening: sanitizer tests done at $(elapsed)"
fi

if [[ $RUN_FUZZ -eq 1 ]]; then
  for fuzzer in decoder_fuzzer config_fuzzer request_fuzzer; do
    # New inputs go to a scratch corpus; the committed seeds stay as they are.
    work="$BUILD_DIR/fuzz/$fuzzer"
    rm -rf "$work" && mkdir -p "$work/corpus" "$work/artifacts"
    echo "ci-hardening: $fuzzer for ${FUZZ_SECONDS}s"
    rc=0
    "$BUILD_DIR/bin/$fuzzer" -max_total_time="$FUZZ_SECONDS" -timeout=60 \
      -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/" \
      "$work/corpus" "tests/fuzz/corpus/$fuzzer" >"$work/log" 2>&1 || rc=$?
    grep -v '^#\|Uses:' "$work/log" | tail -n 40
    grep '^#.*DONE' "$work/log" || true
    if [[ $rc -ne 0 ]]; then
      echo "ci-hardening: $fuzzer failed ($rc); reproducer in $work/artifacts/," \
        "log in $work/log" >&2
      exit 1
    fi
  done
  echo "ci-hardening: fuzz smoke done at $(elapsed)"
fi
echo "ci-hardening: all done in $(elapsed)"
