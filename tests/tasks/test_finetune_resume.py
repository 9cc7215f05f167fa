"""A fine-tuning run killed mid-way and rerun ends with the uninterrupted run's metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.train.helpers import cli_env, losses

ARGS = ["--config.learning_rate=2e-3", "--config.warmup_steps=10", "--config.global_batch_size=16",
        "--config.num_train_steps=60", "--config.eval_every_steps=20", "--config.log_every_steps=10",
        "--config.checkpoint_every_steps=20", "--config.seq_length=32", "--config.data.text_column=sentence"]


def finetune(workdir, pretrained_dir, sentiment_files, compile_cache, **popen):
    train, dev = sentiment_files
    command = [sys.executable, "-m", "albert_jax.cli", "finetune", "--config", "finetune/classification.py",
               "--workdir", str(workdir), f"--config.init_from={pretrained_dir}",
               f"--config.data.train_file={train}", f"--config.data.dev_file={dev}", *ARGS]
    env = cli_env(1, compile_cache)
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)


def evals(workdir):
    records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["eval_accuracy"] for r in records if "eval_accuracy" in r}


def test_a_killed_run_resumes_to_the_same_metrics(tmp_path, pretrained_dir, sentiment_files, compile_cache):
    finetune(tmp_path / "whole", pretrained_dir, sentiment_files, compile_cache)

    killed = tmp_path / "killed"
    process = finetune(killed, pretrained_dir, sentiment_files, compile_cache,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith("step 50:"):
            process.send_signal(signal.SIGKILL)
            break
    process.stdout.read()
    assert process.wait(timeout=300) == -signal.SIGKILL
    assert not (killed / "eval_results.json").exists()
    saved = [name for name in os.listdir(killed / "checkpoints") if name.isdigit()]
    assert saved and max(map(int, saved)) < 60, saved

    finetune(killed, pretrained_dir, sentiment_files, compile_cache)
    assert losses(killed) == losses(tmp_path / "whole")
    assert evals(killed) == evals(tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / "eval_results.json").read_text())
    resumed = json.loads((killed / "eval_results.json").read_text())
    assert resumed == whole
