#!/usr/bin/env bash
# One process driving every GPU of this machine.
# Usage: launch/single_host_gpu.sh [--dry-run] MODULE [ARGS...]
#   e.g. launch/single_host_gpu.sh anylift_jax.train --config configs/single_view.py:paper --workdir runs/sv
# Run it from the repository root (config paths are relative). Variables: see launch/README.md.
set -euo pipefail
SCRIPT_NAME=single_host_gpu.sh
# shellcheck source=launch/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DRY_RUN="${DRY_RUN:-0}"
if [[ "${1:-}" == --dry-run ]]; then
  DRY_RUN=1
  shift
fi
check_dry_run
check_program "${1:-}"
PYTHON="${PYTHON:-python}"

gpu_env
# Shown in the command when set, so the printed line is the whole story of which GPUs run.
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then
  GPU_ENV+=("CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES}")
fi
run env "${GPU_ENV[@]}" "${PYTHON}" -m "$@"
