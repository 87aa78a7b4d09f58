#!/usr/bin/env bash
# CMAKE_CXX_COMPILER_LAUNCHER of the clang build in scripts/ci-hardening.sh.
#
# Debian's LibTorch 1.13 headers do not compile with clang in C++20 mode:
# libstdc++ 12's constexpr std::vector gets instantiated while c10::IValue is
# still incomplete ("arithmetic on a pointer to an incomplete type
# 'c10::IValue'"; clang 14 and 16 alike; gcc is not affected). A file that
# fails with exactly that error is compiled again as C++17; every other file
# stays C++20, and any other error is reported as is.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>"$log"
rc=$?
if [[ $rc -ne 0 ]] && grep -q "incomplete type 'c10::IValue'" "$log"; then
  args=("$@")
  for i in "${!args[@]}"; do
    [[ "${args[$i]}" == -std=c++20 ]] && args[$i]=-std=c++17
  done
  exec "${args[@]}"
fi
cat "$log" >&2
exit $rc
