#!/usr/bin/env bash
# Example: pretraining on several GPU nodes, one process per node driving all its GPUs.
#
# Under SLURM, JAX finds the cluster by itself; submit with one task per node:
#
#   sbatch --nodes=4 --ntasks-per-node=1 --gpus-per-node=8 scripts/multinode_gpu_example.sh
#
# Without a scheduler, start the same command on every node by hand, naming the coordinator
# (node 0's address and a free port), the number of processes and this node's index:
#
#   NODE_RANK=0 NUM_NODES=2 COORDINATOR=10.0.0.1:8476 scripts/multinode_gpu_example.sh   # node 0
#   NODE_RANK=1 NUM_NODES=2 COORDINATOR=10.0.0.1:8476 scripts/multinode_gpu_example.sh   # node 1
#
# The workdir and the prepared data must be on a filesystem every node sees.
set -euo pipefail

CONFIG=${CONFIG:-configs/pretrain/base.py:v2}
WORKDIR=${WORKDIR:-/shared/runs/albert-base-v2}
DATA=${DATA:-/shared/data/prepared}
TOKENIZER=${TOKENIZER:-/shared/data/30k-clean.model}

MULTIHOST=()
if [[ -n ${COORDINATOR:-} ]]; then
  MULTIHOST=(--coordinator-address "$COORDINATOR" --num-processes "$NUM_NODES" --process-id "$NODE_RANK")
fi

# 8 GPUs per node: the data axis spans all GPUs of all nodes (-1), parameters replicated.
# For models that do not fit, shard them: e.g. --config.mesh.fsdp=8 --config.mesh.data=-1.
exec ${SLURM_JOB_ID:+srun} albert-jax pretrain --config "$CONFIG" --workdir "$WORKDIR" \
  "${MULTIHOST[@]}" \
  --config.data.source="$DATA" --config.data.tokenizer="$TOKENIZER" \
  --config.mesh.data=-1
