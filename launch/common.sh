# shellcheck shell=bash
# Helpers sourced by the launch scripts: errors, checks and the dry-run switch.
# The caller sets SCRIPT_NAME (for messages) and DRY_RUN (0 or 1) before using them.

die() {
  echo "${SCRIPT_NAME}: $*" >&2
  exit 2
}

# require NAME WHAT: NAME must be set and non-empty; WHAT says what it is for in the error.
require() {
  [[ -n "${!1:-}" ]] || die "$1 is not set ($2)"
}

# require_match NAME REGEX WHAT: the value of NAME must match REGEX.
require_match() {
  [[ "${!1}" =~ $2 ]] || die "$1='${!1}' is not $3"
}

# quote ARG...: the arguments as one line of shell words, safe to paste into bash or sh: words
# made only of safe characters as they are, others in single quotes (' written as '\'').
quote() {
  local word words=() IFS=' '
  for word in "$@"; do
    if [[ "${word}" =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      words+=("${word}")
    else
      words+=("'${word//\'/\'\\\'\'}'")
    fi
  done
  printf '%s\n' "${words[*]}"
}

# run CMD ARG...: run the command, or with DRY_RUN=1 print it (one line, quoted) instead.
run() {
  if [[ "${DRY_RUN}" == 1 ]]; then
    quote "$@"
  else
    "$@"
  fi
}

# check_program MODULE: MODULE must be a dotted Python module name (what `python -m` takes).
check_program() {
  [[ "${1:-}" =~ ^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$ ]] ||
    die "expected a Python module such as anylift_jax.train as the program, got '${1:-}'"
}

# check_dry_run: DRY_RUN must be 0 or 1.
check_dry_run() {
  require_match DRY_RUN '^[01]$' '0 or 1'
}

# gpu_env: sets the array GPU_ENV to the NAME=VALUE words every GPU process gets.
# JAX_PLATFORMS=cuda makes a missing GPU or a CPU-only jaxlib an error rather than a silent CPU
# run; XLA's default of 75 % of GPU memory for the preallocated pool is raised to 90 %.
gpu_env() {
  local platforms="${JAX_PLATFORMS:-cuda}" fraction="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
  [[ "${fraction}" =~ ^(0?\.[0-9]*[1-9][0-9]*|1|1\.0*)$ ]] ||
    die "XLA_PYTHON_CLIENT_MEM_FRACTION='${fraction}' is not a fraction in (0, 1]"
  # shellcheck disable=SC2034  # GPU_ENV is the result, read by the caller
  GPU_ENV=("JAX_PLATFORMS=${platforms}" "XLA_PYTHON_CLIENT_MEM_FRACTION=${fraction}")
}
