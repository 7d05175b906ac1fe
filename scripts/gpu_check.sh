#!/usr/bin/env bash
# The GPU check (issue 26), one command on a machine with an NVIDIA GPU, CUDA, g++, cmake, ninja and
# a python3 whose torch package is a complete LibTorch 2.x (pip's), and none of Debian's -dev
# packages: builds cseg there against that LibTorch and the dependency bundle made on Debian by
# scripts/gpu_bundle.sh, runs the GPU tests, then the GPU benchmark side by side with PyTorch eager
# against the issue's targets. Aimed at 8 minutes on a 16-core machine.
#
#   bash scripts/gpu_check.sh [BUNDLE]      (default build/cseg-deps.tar.xz)
#
# Writes build-gpu/ (the build, the unpacked bundle), build-gpu/gpu_check.log (everything) and
# build-gpu/gpu_bench.{md,json}; with $OUT set (a device run's output folder) copies those there.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-build/cseg-deps.tar.xz}"
[ -f "$bundle" ] || { echo "gpu_check: no bundle at $bundle (make it on Debian: bash scripts/gpu_bundle.sh)" >&2; exit 2; }
mkdir -p build-gpu
log=build-gpu/gpu_check.log
exec > >(tee "$log") 2>&1
start=$(date +%s)
stage() { echo "[gpu_check] $(($(date +%s) - start)) s: $*"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
g++ --version | head -1
python3 - <<'EOF'
import sys, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available())
if not torch._C._GLIBCXX_USE_CXX11_ABI:
    sys.exit("gpu_check: this torch uses the old C++ ABI; cseg's other libraries need the C++11 ABI")
if not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no GPU")
EOF
torch_cmake=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')

stage "unpacking the dependency bundle"
rm -rf build-gpu/cseg-deps
tar -xJf "$bundle" -C build-gpu
head -2 build-gpu/cseg-deps/MANIFEST

stage "configure"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# NCCL (data-parallel training): c10d's header needs nccl.h, which a pip PyTorch keeps in its
# nvidia-nccl wheel. The check needs one GPU only: without nccl.h, or if that build fails, cseg
# is built without NCCL (Gloo), and the log says so.
nccl_include=$(python3 -c 'import os, nvidia.nccl as n; print(os.path.join(list(n.__path__)[0], "include"))' 2>/dev/null || true)
nccl=(-DCSEG_NCCL=OFF)
if [ -n "$nccl_include" ] && [ -f "$nccl_include/nccl.h" ]; then nccl=(-DCSEG_NCCL=ON -DCSEG_NCCL_INCLUDE_DIR="$nccl_include"); fi
echo "NCCL: ${nccl[*]}"
configure() {
  cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_cmake" \
    -DCSEG_DEPS="$PWD/build-gpu/cseg-deps" -DCSEG_BUILD_TESTS=ON -DCSEG_BUILD_BENCH=ON "$@"
}
build() { cmake --build build-gpu -j "$(nproc)" --target cseg cseg_tests bench_side_by_side; }
configure "${nccl[@]}"

stage "build"
if ! build; then
  [ "${nccl[0]}" = "-DCSEG_NCCL=ON" ] || exit 1
  stage "the build with NCCL failed (above); building without NCCL"
  configure -DCSEG_NCCL=OFF
  build
fi

stage "GPU tests"
# The tests that need a GPU (Device.*, which skip without one) and those of the GPU path's logic
# (precision, loss scaling, checkpoints of both RNGs, per-rank devices).
tests_rc=0
(cd build-gpu && ctest -R '^(Device|Precision|Checkpoint|Distributed)\.' -j 4 --output-on-failure) || tests_rc=$?

stage "GPU benchmark"
bench_rc=0
python3 bench/gpu_side_by_side.py build-gpu ${CSEG_GPU_QUICK:+--quick} --out build-gpu/gpu_bench.json \
  > build-gpu/gpu_bench.md || bench_rc=$?
cat build-gpu/gpu_bench.md

stage "done (tests rc $tests_rc, benchmark rc $bench_rc)"
if [ -n "${OUT:-}" ]; then cp build-gpu/gpu_check.log build-gpu/gpu_bench.md build-gpu/gpu_bench.json "$OUT"/ 2>/dev/null || true; fi
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ]
