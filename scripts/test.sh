#!/usr/bin/env bash
# wigeon: set up, build and run every test. What CI runs (.ci/run).
# 1. an ASan+UBSan build runs the suite (and the bounded fuzz run, under clang);
# 2. the normal build runs the suite last, so ctest's summary line ends the output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cc=${CC:-$(command -v clang || command -v cc)}
if [ "${WG_SKIP_ASAN:-0}" != 1 ]; then
  cmake -S . -B build-asan -DWG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER="$cc" >/dev/null
  cmake --build build-asan -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$jobs"
fi
cmake -S . -B build -DCMAKE_C_COMPILER="$cc" >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs" -E '_bounded$'
