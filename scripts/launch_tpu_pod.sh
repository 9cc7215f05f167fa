#!/usr/bin/env bash
# Runs one albert-jax command on every worker of a Cloud TPU VM pod slice.
#
#   scripts/launch_tpu_pod.sh TPU_NAME ZONE [PROJECT] -- albert-jax pretrain \
#       --config configs/pretrain/base.py:v2 --workdir /gcs/runs/albert-base-v2 ...
#
# Every host must run the same command at the same time: JAX discovers the pod by itself
# (jax.distributed.initialize() with no arguments), each host reads its own share of the data,
# and only process 0 writes metrics. The workdir and the data must be on storage all hosts see
# (e.g. a bucket mounted at the same path on every worker with gcsfuse).
#
# SETUP=1 first installs albert_jax from this checkout on every worker (pip install -e with the
# TPU build of jax); the checkout is copied to ~/albert_jax on each worker.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 TPU_NAME ZONE [PROJECT] -- COMMAND..." >&2
  exit 2
fi
TPU_NAME=$1
ZONE=$2
shift 2
PROJECT_FLAG=()
if [[ $1 != "--" ]]; then
  PROJECT_FLAG=(--project "$1")
  shift
fi
if [[ $1 != "--" || $# -lt 2 ]]; then
  echo "$0: put the command to run after --" >&2
  exit 2
fi
shift
COMMAND=$(printf '%q ' "$@")

ssh_all() {
  gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" "${PROJECT_FLAG[@]}" --worker=all \
    --command "$1"
}

if [[ ${SETUP:-0} == 1 ]]; then
  REPO=$(cd "$(dirname "$0")/.." && pwd)
  gcloud compute tpus tpu-vm scp --recurse "$REPO" "$TPU_NAME":~/albert_jax --zone "$ZONE" \
    "${PROJECT_FLAG[@]}" --worker=all
  JAX_VERSION=$(python3 -c 'import jax; print(jax.__version__)')
  ssh_all "cd ~/albert_jax && pip install -q -e . 'jax[tpu]==$JAX_VERSION'"
fi

# A preempted run resumes from its newest checkpoint when this same command is run again.
ssh_all "cd ~/albert_jax && $COMMAND"
