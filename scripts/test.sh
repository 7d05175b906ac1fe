#!/usr/bin/env bash
# Installs what cseg needs, builds it and runs every test (CTest + GoogleTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
python3 scripts/check_layers.py  # no include cycle between the library's folders (docs/architecture.md)
bash scripts/check_format.sh    # every C++ file as clang-format writes it (.clang-format)
bash scripts/build.sh
cd build
export CSEG_REQUIRE_CHROMIUM=1  # the report test must not skip itself in CI
ctest --output-on-failure -j "${CSEG_TEST_JOBS:-2}"
cd ..
# The GPU check's dependency bundle (scripts/gpu_bundle.sh): made, under its 64 MiB, and complete
# enough for cmake/deps_bundle.cmake to configure against (the GPU machine builds from it).
bash scripts/gpu_bundle.sh build/cseg-deps.tar.xz
rm -rf build/bundle-check && mkdir -p build/bundle-check && tar -xJf build/cseg-deps.tar.xz -C build/bundle-check
cmake -S . -B build/bundle-check/build -DCSEG_DEPS="$PWD/build/bundle-check/cseg-deps" -DGLOO_LIBRARY=/usr/lib/libgloo.so \
  > build/bundle-check/configure.log || { cat build/bundle-check/configure.log; exit 1; }
# cseg must also compile against LibTorch 2.x (GPU users' LibTorch): every unit parsed against
# the 2.11 headers that ../shared/toolchains/ holds (scripts/check_libtorch2.py).
headers=../shared/toolchains/libtorch-2.11.0-cu130-headers.tar.xz
if [ -f "$headers" ]; then
  python3 scripts/check_libtorch2.py --headers "$headers"
elif [ -n "${CI:-}${CSEG_REQUIRE_LIBTORCH2:-}" ]; then
  echo "error: LibTorch 2.x headers $headers not found (the compile check needs them)" >&2
  exit 1
else
  echo "[libtorch2] $headers not found: LibTorch 2.x compile check skipped"
fi
