"""The same seed and config give identical metrics on a rerun: a fresh run of the tiny config
logs the same values as the session's finished run of it, bit for bit, except the wall-clock
ones, and ends with the same parameters. (The real data pipeline resumes exactly:
tests/train/test_resume.py; different process counts: tests/train/test_multiprocess.py.)"""

import json

import jax
import numpy as np
import pytest

from albert_jax.tasks.registry import resolve
from albert_jax.train import loop
from tests.train.helpers import checkpoint_params

# The in-process runs compile the tiny config's programs once, with the session's other runs.
pytestmark = pytest.mark.usefixtures("in_process_cache")

# Logged values that measure time, not the computation.
WALL_CLOCK = {"step_time", "examples_per_sec", "tokens_per_sec", "tflops_per_device", "mfu"}


def logged(workdir) -> list[dict]:
    with open(workdir / "metrics.jsonl") as f:
        return [{k: v for k, v in json.loads(line).items() if k not in WALL_CLOCK} for line in f]


def test_a_rerun_logs_identical_metrics(tiny_config, finished_workdir, tmp_path):
    loop.train(resolve(tiny_config()), str(tmp_path))
    assert [record["step"] for record in logged(tmp_path)] == list(range(1, 11))
    assert logged(tmp_path) == logged(finished_workdir)
    jax.tree.map(np.testing.assert_array_equal, checkpoint_params(tmp_path, 10),
                 checkpoint_params(finished_workdir, 10))


def test_several_steps_per_execution_train_exactly_as_one(tiny_config, finished_workdir, tmp_path):
    # Executions of 4 steps, then of 1 to reach each log and checkpoint at 5 and 10.
    loop.train(resolve(tiny_config("--config.steps_per_execution=4", "--config.log_every_steps=5")),
               str(tmp_path))
    one_by_one = logged(finished_workdir)
    for record in logged(tmp_path):
        steps = one_by_one[record["step"] - 5:record["step"]]
        for key in ("loss", "mlm_accuracy", "grad_norm"):
            assert record[key] == pytest.approx(np.mean([r[key] for r in steps]), rel=1e-6), key
        assert record["learning_rate"] == steps[-1]["learning_rate"]
    assert [record["step"] for record in logged(tmp_path)] == [5, 10]
    for step in (5, 10):
        jax.tree.map(np.testing.assert_array_equal, checkpoint_params(tmp_path, step),
                     checkpoint_params(finished_workdir, step))
