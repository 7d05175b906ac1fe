#!/usr/bin/env bash
# Issue 25's experiments on the pretrained source model (docs/domain_incremental.md, "Results:
# the pretrained source model"), three seeds each, two runs at a time on 2 cores, in this order:
#   1. configs/domain/suite_ablation.yaml, the references: self-training (finetune), image replay
#   2. configs/domain/video_pretrained/suite_cues.yaml: the video rooms, self-training, then
#      + temporal pseudo-labels, + temporal and depth-edge consistency, + flip/scale consistency,
#      and whole-frame labels fixed for the step without the flow (fixed_labels); then
#      suite_label_timing.yaml: per-batch against fixed labels with the geometric augmentation off
#   3. suite_ablation.yaml again: latent replay, joint (every room's labels: the ceiling)
#   4. configs/domain/buffer/suite_buffer.yaml: buffer filling by uncertainty, the adaptive replay
#      ratio, image against latent replay at equal bytes
#   5. configs/domain/suite_detect.yaml: detect -> adapt (uncertainty, features, either)
#   6. the rest of suite_ablation.yaml: TENT and CoTTA (CoTTA costs 3.6x per iteration)
# About 6-9 minutes per run after the studio step, which every suite trains once per seed and
# shares (runs/domain_step0); 8 minutes for the classification pretraining on first use. Several
# hours in all: every run resumes where it stopped, so rerun the script to go on.
# Summaries: python3 scripts/domain_summary.py runs/domain_ablation (and runs/domain_cues,
# runs/domain_label_timing, runs/domain_buffer, runs/domain_detect); per suite also table.md and report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
[ -d data/fmnist-env-night ] || bash scripts/fmnist_environments.sh fmnist-env
[ -d data/fmnist-video-night ] || bash scripts/fmnist_environments.sh fmnist-video --frames 4
./build/cseg suite configs/domain/suite_ablation.yaml --methods finetune,replay "$@"
./build/cseg suite configs/domain/video_pretrained/suite_cues.yaml "$@"
./build/cseg suite configs/domain/video_pretrained/suite_label_timing.yaml "$@"
./build/cseg suite configs/domain/suite_ablation.yaml --methods finetune,replay,latent_replay,joint "$@"
./build/cseg suite configs/domain/buffer/suite_buffer.yaml "$@"
./build/cseg suite configs/domain/suite_detect.yaml "$@"
./build/cseg suite configs/domain/suite_ablation.yaml "$@"
