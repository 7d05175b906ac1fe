#!/usr/bin/env bash
# The method comparison table (docs/method_comparison.md) with one command:
#   bash scripts/compare_methods.sh [METHOD ...]
# Builds cseg, makes the embedded data, trains every method on the four scenarios of
# configs/compare/ (one process per method and scenario: a rerun skips finished runs and
# resumes unfinished ones), then writes the table. Extra key=value overrides go in $CSEG_ARGS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
CSEG=./build/cseg
DATA=${CSEG_DATA:-data/fmnist-scenes}
OUT=${CSEG_OUT:-runs/compare}
$CSEG data fmnist-scenes --out "$DATA"
mkdir -p "$OUT/logs"
methods=("$@")
if [ ${#methods[@]} -eq 0 ]; then
  methods=(finetune joint lwf lwf_mc ilt ewc pi rw mib plop sdr ssul replay der der++ bacs)
fi
for cfg in configs/compare/5-5_overlap.yaml configs/compare/5-5_disjoint.yaml \
           configs/compare/5-1_overlap.yaml configs/compare/5-1_disjoint.yaml; do
  scenario=$(basename "$cfg" .yaml)
  for m in "${methods[@]}"; do
    echo "== $scenario / $m"
    $CSEG train -c "$cfg" "methods=[$m]" "output_dir=$OUT/$scenario/$m" "dataset.root=$DATA" ${CSEG_ARGS:-} \
      > "$OUT/logs/$scenario.$m.log" 2>&1 || { echo "failed: see $OUT/logs/$scenario.$m.log"; exit 1; }
  done
done
$CSEG compare "$OUT" --markdown "$OUT/table.md" --csv "$OUT/table.csv"
