#!/usr/bin/env bash
# Builds cseg with AddressSanitizer + UndefinedBehaviorSanitizer (gcc, its own build folder) and
# runs the whole test suite under them. Any report fails the test that triggered it: ASan aborts
# on the first error, UBSan is made fatal (-fno-sanitize-recover=all). Leaks are reported too,
# except those of the uninstrumented libraries named in tools/lsan.supp (allocations LibTorch,
# OpenMP and HDF5 keep for the life of the process).
#   bash scripts/sanitize.sh            # build into build-sanitize/ and run every test
#   bash scripts/sanitize.sh -R Loader  # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
dir=build-sanitize
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f "$dir/CMakeCache.txt" ] || cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-g1" -DCSEG_SANITIZE=address,undefined -DCSEG_BUILD_BENCH=OFF
cmake --build "$dir" -j "${CSEG_BUILD_JOBS:-2}"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:print_suppressions=0"
cd "$dir"
# Sanitized code runs 2-5x slower: a longer per-test limit than the regular suite's 300 s.
ctest --output-on-failure -j "${CSEG_TEST_JOBS:-2}" --timeout 1200 "$@"
