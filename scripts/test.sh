#!/usr/bin/env bash
# Installs what cseg needs, builds it and runs every test (CTest + GoogleTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
bash scripts/build.sh
cd build
export CSEG_REQUIRE_CHROMIUM=1  # the report test must not skip itself in CI
ctest --output-on-failure -j "${CSEG_TEST_JOBS:-2}"
