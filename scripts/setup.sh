#!/usr/bin/env bash
# Installs every Debian 12 package cseg needs to build, test and run.
# Idempotent: packages already present are left alone. Run as root or with sudo available.
# `setup.sh --test` also installs what only the tests need (headless Chromium for the report test);
# `setup.sh --bench` what only the side-by-side benchmarks need (Debian's Python PyTorch);
# `setup.sh --fuzz` clang and libFuzzer for scripts/fuzz.sh.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache lld pkg-config
  libtorch-dev                       # LibTorch 1.13 (CPU)
  libgloo-dev                        # headers of Gloo, for LibTorch's c10d (data-parallel training)
  libopenblas0-openmp                # fast BLAS for LibTorch's matmul (see reference/performance.md)
  libopencv-core-dev libopencv-imgproc-dev
  libopencv-video-dev                # DIS optical flow (domain adaptation from video)
  libhdf5-dev libmatio-dev           # NYUv2 .mat (HDF5 + MATLAB v5 metadata) and ML-Hypersim files
  libpng-dev libjpeg-dev zlib1g-dev  # images: cseg's own codecs on libpng and libjpeg-turbo
  libyaml-cpp-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  protobuf-compiler                  # tests decode the TensorBoard files cseg writes
  dataset-fashion-mnist              # the photos of the embedded default data
  libjs-chart.js                     # Chart.js, inlined into the HTML reports at build time
)
case "${1:-}" in
  --test) packages+=(chromium python3 clang-format libopencv-imgcodecs-dev liblapack3 libblas3) ;;  # tests render an HTML report in headless
                                            # Chromium; python3 runs the LibTorch 2.x compile check;
                                            # clang-format the format check (scripts/check_format.sh);
                                            # OpenCV's imgcodecs what cseg's codecs are compared with;
                                            # reference LAPACK/BLAS go into the GPU bundle (gpu_bundle.sh)
  --bench) packages+=(python3-torch python3-torchvision python3-pil python3-numpy) ;;  # bench/ Python side
  --fuzz) packages+=(clang libclang-rt-14-dev libopencv-imgcodecs-dev) ;;  # libFuzzer and clang's sanitizers (scripts/fuzz.sh)
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] all packages present"
fi
