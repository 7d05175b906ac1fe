#!/usr/bin/env bash
# The domain benchmark's rooms as video: which unlabelled cues help (temporal pseudo-labels, the
# student's temporal and depth-edge consistency, flip and scale consistency), with adaptation
# alone, and joint training on every room's labels as the reference. About 35 minutes on 2 cores.
# Writes runs/domain_video/{table.md,report.html} and runs/domain_video/joint/; docs/domain_incremental.md
# quotes the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/fmnist_environments.sh fmnist-video --frames 4
./build/cseg suite configs/domain/video/suite.yaml "$@"
./build/cseg train -c configs/domain/video/base.yaml 'methods=[joint]' threads=2 \
  output_dir=runs/domain_video/joint
