#!/usr/bin/env bash
# The checks that need an NVIDIA GPU, in one run (the CPU test suite skips them):
#   1. cuDNN flash attention equals the XLA path (outputs and gradients, padded and packed rows),
#      and a tiny model fine-tunes with it, padded and packed (the tests that ask `needs_gpu`);
#   2. bf16 pretraining of albert-base and albert-xxlarge (v2: no dropout, so "auto" attention is
#      cuDNN) at length 512 on synthetic batches: the trainer's own step time, TFLOP/s and MFU
#      (model FLOPs over the logged step time and the card's peak, `train/devices.py`).
#
#   pip install -e '.[test]' 'jax[cuda12]==0.10.2'
#   bash scripts/gpu_check.sh [OUTPUT_DIR]
#
# GPU_CHECK_RUNS overrides the pretraining runs: "CONFIG BATCH STEPS [LENGTH]" per line (length
# 512 unless given), e.g. for a card with less memory "base.py:v2 32 60". Each run logs every 10
# steps; the first window (compiling and warming up) is left out of the medians.
set -euo pipefail

export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}
OUT=${1:-$(mktemp -d)}
RUNS=${GPU_CHECK_RUNS:-"base.py:v2 128 60
xxlarge.py:v2 32 40"}
cd "$(dirname "$0")/.."

python -m pytest -q -n 0 tests/model/test_attention.py tests/tasks/test_finetune.py -k cudnn -rs

while read -r config batch steps length; do
  [[ -n $config ]] || continue
  length=${length:-512}
  workdir="$OUT/${config%%.py*}"
  rm -rf "$workdir"
  python -m albert_jax.cli pretrain --config "pretrain/$config" --workdir "$workdir" --config.data.source=synthetic \
    --config.seq_length="$length" --config.global_batch_size="$batch" --config.num_train_steps="$steps" \
    --config.warmup_steps=10 --config.log_every_steps=10 --config.eval_every_steps="$steps" \
    --config.eval_steps=1 --config.checkpoint_every_steps="$steps" --config.keep_checkpoints=1
  python - "$config" "$batch" "$length" "$workdir/metrics.jsonl" <<'EOF'
import json, statistics, sys
config, batch, length, path = sys.argv[1:]
windows = [r for r in map(json.loads, open(path)) if "step_time" in r][1:]
def median(key):
    values = [r[key] for r in windows if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")
print(f"{config} at batch {batch} x {length}: {median('step_time') * 1000:.1f} ms a step, "
      f"{median('tflops_per_device'):.1f} TFLOP/s, MFU {median('mfu'):.1%} "
      f"(median of {len(windows)} windows of 10 steps)")
EOF
done <<<"$RUNS"
