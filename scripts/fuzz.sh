#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, with ASan and UBSan; build-fuzz/) and runs each on
# its seed corpus for FUZZ_SECONDS (600 by default), one after another.
#   bash scripts/fuzz.sh                            # every target
#   FUZZ_SECONDS=60 bash scripts/fuzz.sh fuzz_image # one target, a minute
# A crash, a leak, an input slower than 25 s or one that takes over 2 GB in one allocation (4 GB
# in all) stops its target and lands in build-fuzz/findings/<target>/ (replay it:
# build-fuzz/fuzz/<target> FILE); each target's log is build-fuzz/findings/<target>.log. The
# script fails when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --fuzz
dir=build-fuzz
seconds=${FUZZ_SECONDS:-600}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_torch_file fuzz_image fuzz_config fuzz_hdf5 fuzz_matlab)
[ -f "$dir/CMakeCache.txt" ] || CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCSEG_FUZZ=ON -DCSEG_BUILD_TESTS=OFF -DCSEG_BUILD_BENCH=OFF
cmake --build "$dir" -j "${CSEG_BUILD_JOBS:-2}" --target fuzz_make_seeds "${targets[@]}"

# Seed corpora: files of each format as the tests write them, the repository's torch.save
# fixtures and its experiment configs. The corpus folders keep what the fuzzer adds between runs.
corpus=$dir/corpus
"$dir/fuzz/fuzz_make_seeds" "$corpus"
mkdir -p "$corpus/fuzz_torch_file" "$corpus/fuzz_config"
cp tests/files/weights/mixed_zip.pt tests/files/weights/mixed_legacy.pt tests/files/methods/sdr_reference.pt \
  "$corpus/fuzz_torch_file/"
find configs -name '*.yaml' | while read -r f; do cp "$f" "$corpus/fuzz_config/$(echo "$f" | tr / _)"; done

# A failed allocation returns null as libc's malloc does (cseg's code then throws std::bad_alloc,
# which the targets report as a finding).
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:print_suppressions=0"
# libhdf5 runs in a helper process (src/data/datasets/hdf5_file.cpp) that may take this long on
# one request before it counts as hung: shorter than libFuzzer's -timeout, so that a file on which
# libhdf5 loops is cseg's error, not the fuzzer's finding.
export CSEG_HDF5_TIMEOUT_S=10
status=0
for t in "${targets[@]}"; do
  mkdir -p "$dir/findings/$t"
  # libhdf5 allocates the sizes its metadata declares (up to 4 GB) before reading them. Linux
  # hands out that address space without memory and the read then fails (such files peak at
  # 12 MB resident outside ASan), so for this target only the resident limit applies; cseg's own
  # allocations are bounded far below it. (libhdf5 runs in a helper process, whose crashes the
  # target sees as cseg's error naming the file; its coverage does not reach the fuzzer.)
  malloc_limit=2048
  case $t in fuzz_hdf5) malloc_limit=1048576 ;; esac
  echo "[fuzz] $t: ${seconds} s on $(ls "$corpus/$t" | wc -l) seeds"
  if "$dir/fuzz/$t" "$corpus/$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=4096 -malloc_limit_mb=$malloc_limit \
      -artifact_prefix="$dir/findings/$t/" -print_final_stats=1 >"$dir/findings/$t.log" 2>&1; then
    echo "[fuzz] $t: clean ($(grep -E '^stat::number_of_executed_units' "$dir/findings/$t.log" | awk '{print $2}') inputs)"
  else
    echo "[fuzz] $t: FOUND SOMETHING, see $dir/findings/$t.log and $dir/findings/$t/"
    tail -40 "$dir/findings/$t.log"
    status=1
  fi
done
exit $status
