#!/usr/bin/env bash
# Same numbers before and after a change that must not change behaviour (a refactoring):
#   bash scripts/same_numbers.sh run CSEG_BINARY OUT_DIR   # the runs below with one binary
#   python3 scripts/same_numbers.py OUT_BEFORE OUT_AFTER   # every logged loss, every confusion matrix
# The runs: the quickstart (as the README runs it), a 5-1 overlap run of every class-incremental
# method (a short budget, every iteration's loss logged), and domain video
# runs with every adaptation cue (temporal pseudo-labels, temporal and depth-edge consistency,
# flip and scale, soft pseudo-labels, replay of pseudo-labelled frames) on small generated rooms.
# About 25 minutes per binary on 2 cores (the quickstart is 12 of them; QUICK=1 leaves it out).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = run ] && [ $# -eq 3 ] || { echo "usage: $0 run CSEG_BINARY OUT_DIR" >&2; exit 2; }
bin=$(realpath "$2")
out=$3
mkdir -p "$out"
out=$(realpath "$out")

if [ "${QUICK:-0}" != 1 ]; then
  "$bin" train -c configs/quickstart.yaml output_dir="$out/quickstart" \
    train.shared_step0="$out/quickstart/shared_step0"
fi

methods=$("$bin" list methods | sed 's/^methods: //; s/, /\n/g')
for m in $methods; do
  "$bin" train -c configs/compare/5-1_overlap.yaml "methods=[$m]" threads=2 output_dir="$out/5-1/$m" \
    train.steps_per_class=6 train.first_step_factor=1 train.log_every=1 \
    >"$out/5-1-$m.log" 2>&1 || echo "5-1 $m stopped with an error (compared like any result): $out/5-1-$m.log"
done

# Small video rooms (4 frames per sequence), made once per output folder.
seed=10
for env in studio office warehouse outdoor night; do
  seed=$((seed + 1))
  [ -d "$out/data/fmnist-video-$env" ] || "$bin" data fmnist-scenes --out "$out/data/fmnist-video-$env" \
    --environment "$env" --train 48 --val 8 --test 16 --seed "$seed" --frames 4 >/dev/null
done
printf 'data_root: %s\noutput_root: runs\n' "$out/data" >"$out/env.yaml"
short=(threads=2 train.iterations=12 train.log_every=1 adaptation.score_pseudo_labels=true)
"$bin" train -c configs/domain/video/temporal.yaml --env "$out/env.yaml" "methods=[finetune, replay, latent_replay]" \
  "${short[@]}" output_dir="$out/video/temporal" >"$out/video-temporal.log" 2>&1
"$bin" train -c configs/domain/video/consistency.yaml --env "$out/env.yaml" "methods=[finetune, joint, der++]" \
  "${short[@]}" adaptation.teacher_flip=true adaptation.student_scale=0.25 output_dir="$out/video/cues" \
  >"$out/video-cues.log" 2>&1
"$bin" train -c configs/domain/video/base.yaml --env "$out/env.yaml" "methods=[finetune]" \
  "${short[@]}" adaptation.pseudo_labels=soft output_dir="$out/video/soft" >"$out/video-soft.log" 2>&1
echo "done: $out"
