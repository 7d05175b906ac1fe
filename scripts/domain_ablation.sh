#!/usr/bin/env bash
# Issue 25's ablation on the pretrained source model (configs/domain/suite_ablation.yaml): five rooms,
# three seeds, self-training (finetune), image replay, TENT, CoTTA, latent replay and joint, then
# detect -> adapt (configs/domain/suite_detect.yaml). About 9 minutes per run (CoTTA longer), two
# at a time on 2 cores (about two and a half hours for all 24; plus 8 minutes for the classification
# pretraining on first use). The runs resume where they stopped; the questions the issue asks first go first.
# Summary: python3 scripts/domain_summary.py runs/domain_ablation; the same for runs/domain_detect
# (docs/domain_incremental.md quotes it); per suite also table.md and report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
[ -d data/fmnist-env-night ] || bash scripts/fmnist_environments.sh fmnist-env
./build/cseg suite configs/domain/suite_ablation.yaml --methods finetune,replay "$@"
./build/cseg suite configs/domain/suite_detect.yaml "$@"
./build/cseg suite configs/domain/suite_ablation.yaml --methods finetune,replay,tent,cotta "$@"
./build/cseg suite configs/domain/suite_ablation.yaml "$@"
