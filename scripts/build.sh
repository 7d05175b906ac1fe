#!/usr/bin/env bash
# Configures and builds cseg (library, `cseg` program, tests, benchmarks) into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f build/CMakeCache.txt ] || cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
# -j2: one torch translation unit takes ~1 GB and most of a core (reference/performance.md).
cmake --build build -j "${CSEG_BUILD_JOBS:-2}"
