#!/usr/bin/env bash
# Runs one albert-jax command on every worker of a Cloud TPU VM pod slice.
#
#   SETUP=1 scripts/launch_tpu_pod.sh TPU_NAME ZONE [PROJECT] -- albert-jax pretrain \
#       --config pretrain/base.py:v2 --workdir gs://my-bucket/runs/albert-base-v2 ...
#
# Every host must run the same command at the same time: JAX discovers the pod by itself
# (jax.distributed.initialize() with no arguments), each host reads its own share of the data,
# and only process 0 writes metrics. The workdir and the data must be on storage all hosts see
# (gs:// paths, or a bucket mounted at the same path on every worker).
#
# SETUP=1 (once per slice, and again after a change) first installs albert_jax with libtpu on
# every worker, in the virtual environment ~/albert_jax_env, as a user installs it:
#   - by default a wheel built here from this checkout (only the wheel is copied);
#   - with ALBERT_JAX_SOURCE=REQUIREMENT, that pip requirement instead, e.g.
#     ALBERT_JAX_SOURCE=git+https://github.com/ORG/albert_jax.git@v0.1.0 (then no checkout is needed).
# albert_jax needs Python 3.11 or newer, where TPU VM images on Ubuntu 22.04 ship 3.10: the
# environment is made by uv (installed for the user with pip), which fetches a Python 3.11+ when
# the image has none.
# The command then runs on every worker from the home directory, with ~/albert_jax_env/bin first
# on PATH. A preempted run resumes from its newest checkpoint when the same command is run again.
set -euo pipefail

usage() {
  echo "usage: [SETUP=1] [ALBERT_JAX_SOURCE=REQUIREMENT] $0 TPU_NAME ZONE [PROJECT] -- COMMAND..." >&2
  exit 2
}

[[ $# -ge 3 ]] || usage
TPU_NAME=$1
ZONE=$2
shift 2
# (An empty array is expanded as ${A[@]+"${A[@]}"}: macOS's bash 3.2 calls "${A[@]}" unbound under set -u.)
PROJECT_FLAG=()
if [[ $1 != "--" ]]; then
  PROJECT_FLAG=(--project "$1")
  shift
fi
[[ $# -ge 2 && $1 == "--" ]] || usage
shift
COMMAND=$(printf '%q ' "$@")
ENV_DIR='$HOME/albert_jax_env'

on_every_worker() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" ${PROJECT_FLAG[@]+"${PROJECT_FLAG[@]}"} --worker=all \
    --command "$1"
}

# Builds a wheel of this checkout in $STAGING, from a copy of what a wheel is made of (a stale
# build/ folder in the checkout could otherwise leak into it).
build_wheel() {
  local repo
  repo=$(cd "$(dirname "$0")/.." && pwd)
  cp "$repo/pyproject.toml" "$repo/README.md" "$STAGING/"
  cp -R "$repo/albert_jax" "$repo/configs" "$STAGING/"
  find "$STAGING" -name __pycache__ -prune -exec rm -rf {} +
  python3 -m pip wheel --no-deps --disable-pip-version-check -q -w "$STAGING/dist" "$STAGING"
}

if [[ ${SETUP:-0} == 1 ]]; then
  if [[ -n ${ALBERT_JAX_SOURCE:-} ]]; then
    REQUIREMENT=$(printf '%q' "albert_jax[tpu] @ $ALBERT_JAX_SOURCE")
  else
    STAGING=$(mktemp -d)
    trap 'rm -rf "$STAGING"' EXIT
    build_wheel
    WHEEL=$(ls "$STAGING"/dist/albert_jax-*.whl)
    on_every_worker "rm -rf ~/albert_jax_wheel && mkdir ~/albert_jax_wheel"
    gcloud compute tpus tpu-vm scp "$WHEEL" "$TPU_NAME":albert_jax_wheel/ --zone "$ZONE" \
      ${PROJECT_FLAG[@]+"${PROJECT_FLAG[@]}"} --worker=all
    REQUIREMENT="\"albert_jax[tpu] @ file://\$HOME/albert_jax_wheel/$(basename "$WHEEL")\""
  fi
  # pip refuses --user installs into an image's Python that is externally managed (PEP 668)
  # unless told to go ahead; older pips know no such option.
  on_every_worker "set -e
python3 -m pip install -q --user uv 2>/dev/null || python3 -m pip install -q --user --break-system-packages uv
rm -rf $ENV_DIR
~/.local/bin/uv venv -q --python '>=3.11' $ENV_DIR
~/.local/bin/uv pip install -q --python $ENV_DIR/bin/python $REQUIREMENT"
fi

on_every_worker "cd ~ && export PATH=$ENV_DIR/bin:\$PATH && $COMMAND"
