#!/usr/bin/env bash
# Cloud TPU VM slices (one host or a pod slice): create, install, run on every worker, logs.
# Usage: launch/tpu_pod.sh [--dry-run] COMMAND [...]
#   create                            create the slice (ACCELERATOR_TYPE, RUNTIME_VERSION, SPOT)
#   delete                            delete it (gcloud asks for confirmation)
#   setup                             copy this checkout to every worker, make a venv, pip install
#   run [NAME=VALUE ...] MODULE [ARGS...]
#                                     python -m MODULE ARGS on all workers at once, with the
#                                     environment NAME=VALUE; output to a log per worker and here
#   logs                              tail every worker's log of RUN_NAME (follows unless FOLLOW=0)
#   stop                              stop RUN_NAME's process on every worker
# Required: TPU_NAME, ZONE. Other variables and their defaults: see launch/README.md.
set -euo pipefail
SCRIPT_NAME=tpu_pod.sh
LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=launch/common.sh
source "${LAUNCH_DIR}/common.sh"

DRY_RUN="${DRY_RUN:-0}"
if [[ "${1:-}" == --dry-run ]]; then
  DRY_RUN=1
  shift
fi
check_dry_run
COMMAND="${1:-}"
shift || true

require TPU_NAME "name of the TPU VM slice"
require ZONE "zone of the slice, e.g. us-east5-a"
PROJECT="${PROJECT:-}"
REPO_DIR="${REPO_DIR:-anylift-jax}"
RUN_NAME="${RUN_NAME:-anylift}"
require_match REPO_DIR '^[A-Za-z0-9._/-]+$' 'a directory below the remote home (letters, digits, . _ - /)'
require_match RUN_NAME '^[A-Za-z0-9._-]+$' 'a file-name stem (letters, digits, . _ -)'

TPU=(gcloud compute tpus tpu-vm)
WHERE=("--zone=${ZONE}")
if [[ -n "${PROJECT}" ]]; then
  WHERE+=("--project=${PROJECT}")
fi

# on_all_workers SCRIPT: run the bash SCRIPT on every worker of the slice concurrently.
on_all_workers() {
  run "${TPU[@]}" ssh "${TPU_NAME}" "${WHERE[@]}" --worker=all "--command=$1"
}

# Shell prefix for the remote scripts: enter the checkout and name this worker's log files
# logs/RUN_NAME.worker<i>.{log,pid}; <i> is the worker number from the TPU VM metadata server.
# shellcheck disable=SC2016  # $w and $log expand on the worker
AT_WORKER="cd $(quote "${REPO_DIR}") && w=\$(curl -sSf -H 'Metadata-Flavor: Google' http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number) && log=logs/${RUN_NAME}.worker\$w"
# shellcheck disable=SC2016
LABEL='sed -u "s/^/[worker $w] /"'

create() {
  require ACCELERATOR_TYPE "slice type, e.g. v5p-32, v5litepod-16, v6e-16, v4-32"
  local default_version=
  # The runtime images Google lists for JAX, per TPU generation.
  case "${ACCELERATOR_TYPE}" in
    v6e-*) default_version=v2-alpha-tpuv6e ;;
    v5p-*) default_version=v2-alpha-tpuv5 ;;
    v5litepod-*) default_version=v2-alpha-tpuv5-lite ;;
    v2-* | v3-* | v4-*) default_version=tpu-ubuntu2204-base ;;
  esac
  RUNTIME_VERSION="${RUNTIME_VERSION:-${default_version}}"
  require RUNTIME_VERSION "TPU software version; no default for ${ACCELERATOR_TYPE}"
  SPOT="${SPOT:-0}"
  require_match SPOT '^[01]$' '0 or 1'
  local args=("${TPU_NAME}" "${WHERE[@]}" "--accelerator-type=${ACCELERATOR_TYPE}" "--version=${RUNTIME_VERSION}")
  if [[ "${SPOT}" == 1 ]]; then
    args+=(--spot)
  fi
  run "${TPU[@]}" create "${args[@]}"
}

setup() {
  local src="${SRC_DIR:-$(dirname "${LAUNCH_DIR}")}"
  [[ -f "${src}/pyproject.toml" ]] || die "SRC_DIR='${src}' is not an anylift-jax checkout (no pyproject.toml)"
  local python_version="${PYTHON_VERSION:-3.11}" jax_spec="${JAX_SPEC:-jax[tpu]}" package=.
  if [[ -n "${PIP_EXTRAS:-}" ]]; then
    package=".[${PIP_EXTRAS}]"
  fi
  local tarball="${TMPDIR:-/tmp}/anylift-jax-src-${TPU_NAME}.tar.gz" remote_tarball=anylift-jax-src.tar.gz
  # One archive instead of scp --recurse: thousands of small files to every worker is slow.
  # Left out: version control, virtual environments, caches and run outputs.
  run tar --exclude=.git --exclude=.venv --exclude=__pycache__ --exclude='*.egg-info' \
    --exclude=.pytest_cache --exclude=./runs --exclude='./workdir*' -czf "${tarball}" -C "${src}" .
  run "${TPU[@]}" scp "${tarball}" "${TPU_NAME}:${remote_tarball}" "${WHERE[@]}" --worker=all
  # The TPU images run Ubuntu 22.04 (Python 3.10); uv provides the Python this package needs.
  local repo
  repo="$(quote "${REPO_DIR}")"
  on_all_workers "mkdir -p ${repo} && tar -xzf ${remote_tarball} -C ${repo} && rm ${remote_tarball} && cd ${repo} \
&& python3 -m pip install --user --quiet --upgrade uv \
&& { [ -x .venv/bin/python ] || python3 -m uv venv --python $(quote "${python_version}") .venv; } \
&& python3 -m uv pip install --python .venv/bin/python -e $(quote "${package}") $(quote "${jax_spec}")"
}

run_program() {
  local env_words=()
  while [[ "${1:-}" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    env_words+=("$1")
    shift
  done
  check_program "${1:-}"
  DETACH="${DETACH:-0}"
  require_match DETACH '^[01]$' '0 or 1'
  # The pid file lets `stop` find the process: bash writes its own pid, then execs into python.
  local program
  # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner bash on the worker
  program="bash -c 'echo \$\$ > \"\$0\"; exec \"\$@\"' \"\$log.pid\" $(quote env "${env_words[@]}" .venv/bin/python -m "$@")"
  if [[ "${DETACH}" == 1 ]]; then
    # The braces keep `&` to the program: on the whole && list it would background the cd too.
    # shellcheck disable=SC2016
    on_all_workers "${AT_WORKER} && mkdir -p logs && { nohup ${program} > \"\$log.log\" 2>&1 < /dev/null & } \
&& echo \"[worker \$w] started, log ~/${REPO_DIR}/\$log.log\""
  else
    on_all_workers "set -o pipefail && ${AT_WORKER} && mkdir -p logs && ${program} 2>&1 | tee \"\$log.log\" | ${LABEL}"
  fi
}

logs() {
  FOLLOW="${FOLLOW:-1}"
  LOG_LINES="${LOG_LINES:-100}"
  require_match FOLLOW '^[01]$' '0 or 1'
  require_match LOG_LINES '^[0-9]+$' 'a number of lines'
  local follow=
  if [[ "${FOLLOW}" == 1 ]]; then
    follow=' -F'
  fi
  on_all_workers "${AT_WORKER} && tail -n ${LOG_LINES}${follow} \"\$log.log\" | ${LABEL}"
}

stop() {
  on_all_workers "${AT_WORKER} && kill \"\$(cat \"\$log.pid\")\" && echo \"[worker \$w] stopped ${RUN_NAME}\""
}

if [[ "${COMMAND}" != run && $# -gt 0 ]]; then
  die "'${COMMAND}' takes no arguments, got: $*"
fi
case "${COMMAND}" in
  create) create ;;
  delete) run "${TPU[@]}" delete "${TPU_NAME}" "${WHERE[@]}" ;;
  setup) setup ;;
  run) run_program "$@" ;;
  logs) logs ;;
  stop) stop ;;
  *) die "unknown command '${COMMAND}' (create, delete, setup, run, logs, stop)" ;;
esac
