#!/usr/bin/env bash
# Submit launch/slurm_gpu.sbatch with --ntasks-per-node derived from the GPUs per node.
# Usage: launch/slurm_gpu.sh [--dry-run] MODULE [ARGS...]
#   e.g. NODES=4 launch/slurm_gpu.sh anylift_jax.train --config configs/single_view.py:paper --workdir /scratch/sv
# Partition, account, time limit: sbatch's own SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT.
# Variables: see launch/README.md.
set -euo pipefail
SCRIPT_NAME=slurm_gpu.sh
LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${LAUNCH_DIR}/common.sh"

DRY_RUN="${DRY_RUN:-0}"
if [[ "${1:-}" == --dry-run ]]; then
  DRY_RUN=1
  shift
fi
check_dry_run
check_program "${1:-}"
NODES="${NODES:-1}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
PROCESS_PER="${PROCESS_PER:-gpu}"
JOB_NAME="${JOB_NAME:-anylift}"
require_match NODES '^[1-9][0-9]*$' 'a positive integer'
require_match GPUS_PER_NODE '^[1-9][0-9]*$' 'a positive integer'
require_match PROCESS_PER '^(gpu|host)$' 'gpu or host'

tasks_per_node="${GPUS_PER_NODE}"
if [[ "${PROCESS_PER}" == host ]]; then
  tasks_per_node=1
fi
# --chdir: the batch script finds the repository (launch/common.sh, configs/) from its working directory.
run sbatch "--job-name=${JOB_NAME}" "--nodes=${NODES}" "--gpus-per-node=${GPUS_PER_NODE}" \
  "--ntasks-per-node=${tasks_per_node}" "--chdir=$(dirname "${LAUNCH_DIR}")" \
  "${LAUNCH_DIR}/slurm_gpu.sbatch" "$@"
