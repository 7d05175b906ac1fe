#!/usr/bin/env bash
# Installs what cseg needs, builds it and runs every test (CTest + GoogleTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
cd build
ctest --output-on-failure -j "${CSEG_TEST_JOBS:-2}"
