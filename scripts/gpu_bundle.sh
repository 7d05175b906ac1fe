#!/usr/bin/env bash
# Makes the dependency bundle for building cseg where Debian's -dev packages are not (a GPU machine
# with a pip PyTorch: scripts/gpu_check.sh). Run on Debian 12 after scripts/setup.sh --test:
#
#   bash scripts/gpu_bundle.sh [OUT]        (default build/cseg-deps.tar.xz)
#
# It holds, from this machine's packages: the headers cseg and its tests include (OpenCV core,
# imgproc and video; yaml-cpp, libpng, libjpeg-turbo, zlib, HDF5, matio, CLI11, nlohmann-json,
# GoogleTest, Gloo's headers for c10d's; fmt apart, used only with a LibTorch without its own),
# GoogleTest's static libraries, Chart.js, and the shared libraries cseg links with every library
# they load in turn, except glibc's and the C++ runtime's (libc, libm, libstdc++, libgcc_s, ...):
# those of a newer distribution run them. OpenCV's LAPACK and BLAS are the reference builds
# (liblapack3, libblas3) rather than OpenBLAS (36 MB): cseg calls none of OpenCV's solvers.
# cmake -DCSEG_DEPS=<unpacked folder> builds against it (cmake/deps_bundle.cmake). The bundle must
# stay under 64 MiB (what a device run carries); the script fails above that and prints its size.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/cseg-deps.tar.xz}"
limit=$((64 * 1024 * 1024))
arch=x86_64-linux-gnu
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/cseg-deps"
mkdir -p "$root/include" "$root/lib" "$root/share" "$root/fmt-include"

need() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" ||
  { echo "gpu_bundle: package $1 is not installed (bash scripts/setup.sh --test installs it)" >&2; exit 1; }; }

# Headers: every file a package installs under /usr/include (the multiarch folder merged in).
header_packages=(libopencv-core-dev libopencv-imgproc-dev libopencv-video-dev libyaml-cpp-dev libpng-dev
  libjpeg62-turbo-dev zlib1g-dev libhdf5-dev libmatio-dev libcli11-dev nlohmann-json3-dev libgtest-dev
  libgmock-dev libgloo-dev)
copy_headers() {  # package, destination folder
  need "$1"
  dpkg -L "$1" | while read -r f; do
    [ -f "$f" ] || continue
    case "$f" in
      /usr/include/$arch/*) rel="${f#/usr/include/$arch/}" ;;
      /usr/include/*) rel="${f#/usr/include/}" ;;
      *) continue ;;
    esac
    mkdir -p "$2/$(dirname "$rel")"
    cp -L "$f" "$2/$rel"
  done
}
for p in "${header_packages[@]}"; do copy_headers "$p" "$root/include"; done
copy_headers libfmt-dev "$root/fmt-include"

# Shared libraries cseg links, then everything they load (ldd gives the whole tree).
libdir=/usr/lib/$arch
seeds=("$libdir"/libopencv_core.so.406 "$libdir"/libopencv_imgproc.so.406 "$libdir"/libopencv_video.so.406
  "$libdir"/libyaml-cpp.so.0.7 "$libdir"/libpng16.so.16 "$libdir"/libjpeg.so.62 /lib/$arch/libz.so.1
  "$libdir"/libhdf5_serial.so.103 "$libdir"/libmatio.so.11)
base='^(linux-vdso|libc|libm|libmvec|libpthread|libdl|librt|libutil|libresolv|libanl|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so'
export LD_LIBRARY_PATH="$libdir/lapack:$libdir/blas"  # reference LAPACK/BLAS, not OpenBLAS
for s in "${seeds[@]}"; do
  [ -e "$s" ] || { echo "gpu_bundle: $s is missing (bash scripts/setup.sh --test)" >&2; exit 1; }
  cp -L "$s" "$root/lib/$(basename "$s")"
  ldd "$s" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    [[ "$name" =~ $base ]] && continue
    cp -L "$path" "$root/lib/$name"
  done
done
unset LD_LIBRARY_PATH
if ls "$root/lib" | grep -q openblas; then
  echo "gpu_bundle: OpenBLAS got in (is liblapack3/libblas3 installed?)" >&2
  exit 1
fi
cp -L "$libdir/libgtest.a" "$libdir/libgtest_main.a" "$root/lib/"
cp -L /usr/share/javascript/chart.js/chart.min.js "$root/share/"

{
  echo "cseg dependency bundle, made $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "by scripts/gpu_bundle.sh; use: cmake -DCSEG_DEPS=<this folder> (cmake/deps_bundle.cmake)"
  echo
  echo "packages:"
  for p in "${header_packages[@]}" libfmt-dev; do dpkg-query -W -f='  ${Package} ${Version}\n' "$p"; done
  echo
  echo "lib/ (bytes):"
  (cd "$root/lib" && ls -l | awk 'NR > 1 {printf "  %-40s %10d\n", $9, $5}')
} > "$root/MANIFEST"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - cseg-deps | xz -T2 -6 > "$out.tmp"
mv "$out.tmp" "$out"
unpacked=$(du -sb "$root" | cut -f1)
libs=$(du -sb "$root/lib" | cut -f1)
headers=$(du -sb "$root/include" "$root/fmt-include" | awk '{s += $1} END {print s}')
packed=$(stat -c %s "$out")
awk -v out="$out" -v p="$packed" -v u="$unpacked" -v l="$libs" -v n="$(ls "$root/lib" | wc -l)" -v h="$headers" \
  'BEGIN {m = 1048576; printf "gpu_bundle: %s: %.1f MiB packed (limit 64), %.1f MiB unpacked: libraries %.1f MiB (%d files), headers %.1f MiB\n", out, p / m, u / m, l / m, n, h / m}'
if [ "$packed" -gt "$limit" ]; then
  echo "gpu_bundle: the bundle is over 64 MiB" >&2
  exit 1
fi
