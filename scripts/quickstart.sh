#!/usr/bin/env bash
# The quickstart: installs what cseg needs, builds it, makes the embedded FMNIST-Scenes data,
# pretrains Fast-SCNN's encoder on the Fashion-MNIST train photos (once; a rerun finds it) and
# runs configs/quickstart.yaml (fine-tuning vs joint on a 4-step class-incremental scenario).
# Extra arguments are passed to `cseg train` as key=value overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/cseg data fmnist-scenes --out data/fmnist-scenes-128 --size 128
./build/cseg pretrain -c configs/pretrain/fmnist_fast_scnn.yaml
./build/cseg train --config configs/quickstart.yaml "$@"
