#!/usr/bin/env bash
# The method comparison table (docs/method_comparison.md) with one command:
#   bash scripts/compare_methods.sh [--methods m1,m2] [output_dir=DIR]
# Builds cseg, makes the embedded data (128 x 128 scenes, with saliency maps), pretrains the
# encoder once, then runs the suite configs/compare/suite.yaml: every method on 5-5 and 5-1
# overlap, three seeds, one process per run, two at a time (about four hours on 2 cores); a rerun
# skips finished runs and resumes unfinished ones. The table lands in runs/compare/table.md and
# table.csv (mean ± std over seeds, differences beyond seed noise marked).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
./build/cseg data fmnist-scenes --out data/fmnist-scenes-128 --size 128
./build/cseg suite configs/compare/suite.yaml "$@"
