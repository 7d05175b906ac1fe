#!/usr/bin/env bash
# The five FMNIST-Scenes rooms of the domain benchmarks (studio, office, warehouse, outdoor,
# night), 800 train / 100 val / 200 test scenes each, one generator seed per room:
#   bash scripts/fmnist_environments.sh PREFIX [more `cseg data fmnist-scenes` options]
# writes data/PREFIX-<room>. Run from the repository root after the build.
set -euo pipefail
prefix="$1"
shift
seed=10
for env in studio office warehouse outdoor night; do
  seed=$((seed + 1))
  ./build/cseg data fmnist-scenes --out "data/$prefix-$env" --environment "$env" \
    --train 800 --val 100 --test 200 --seed "$seed" "$@"
done
