#!/usr/bin/env bash
# The domain-incremental benchmark on FMNIST-Scenes: five environments (studio, office labelled;
# warehouse, outdoor, night unlabelled), adaptation alone vs with image or latent replay. About 15 minutes on 2
# cores. Writes runs/domain/{table.md,report.html}; docs/domain_incremental.md quotes the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/fmnist_environments.sh fmnist-env
./build/cseg suite configs/domain/suite.yaml "$@"
