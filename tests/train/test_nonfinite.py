"""Steps whose loss or gradients are not finite: never applied to the state; `nonfinite="stop"`
stops the run naming the step with nothing after it saved, `"skip"` goes on and counts them."""

import dataclasses
import json

import grain
import jax
import numpy as np
import pytest

from albert_jax.data.synthetic import SyntheticBatch
from albert_jax.errors import InputError
from albert_jax.tasks.pretraining import PretrainingData, PretrainingTask
from albert_jax.tasks.registry import resolve
from albert_jax.train import data as data_lib
from albert_jax.train import loop
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import step as step_lib
from tests.train.helpers import complete_steps

BAD_STEP = 3


def corrupt(batch: dict[str, np.ndarray], vocab_size: int) -> dict[str, np.ndarray]:
    """The batch with one token id past the vocabulary, as a damaged dataset might hold: its
    embedding lookup reads NaN, and so do the loss and every gradient."""
    batch = {k: v.copy() for k, v in batch.items()}
    batch["input_ids"][0, 1] = vocab_size
    return batch


class _DataWithABadBatch(PretrainingData):
    def train_iterator(self, rows):
        make = SyntheticBatch(self.task.data, self.model.vocab_size, 0, self.global_batch_size, rows)

        def batch(index: int):  # the batch of step index + 1
            out = make(index)
            return corrupt(out, self.model.vocab_size) if index + 1 == BAD_STEP else out

        return iter(grain.MapDataset.range(2**62).map(batch).to_iter_dataset())


@dataclasses.dataclass(frozen=True)
class _TaskWithABadBatch(PretrainingTask):
    def open_data(self, model, global_batch_size):
        return _DataWithABadBatch(self, model, global_batch_size)


def with_a_bad_batch(config):
    run = resolve(config)
    fields = {f.name: getattr(run.task, f.name) for f in dataclasses.fields(PretrainingTask)}
    return run.replace(task=_TaskWithABadBatch(**fields))


def test_a_nonfinite_step_leaves_params_and_optimizer_state_as_they_were(tiny_config, in_process_cache):
    run = resolve(tiny_config())
    program = step_lib.build_program(run, mesh_lib.make_mesh(**run.config.mesh))
    make = SyntheticBatch(run.task.data, run.model.vocab_size, 0, 16, (0, 16))

    train_step = program.train_step.lower(*program.train_args()).compile()  # as the loop does

    def step(state, local):
        return train_step(state, data_lib.global_batch(local, program.abstract_batch))

    state, _ = step(program.init(), make(0))  # past warmup's zero learning rate
    before = jax.device_get(state)
    state, metrics = step(state, corrupt(make(1), run.model.vocab_size))
    after = jax.device_get(state)
    assert not np.isfinite(metrics["loss"]) and not np.isfinite(metrics["grad_norm"])
    assert metrics["skipped"] == 1 and np.isfinite(metrics["param_norm"])
    assert after.step == before.step + 1
    jax.tree.map(np.testing.assert_array_equal, (after.params, after.opt_state),
                 (before.params, before.opt_state))

    state, metrics = step(state, make(2))
    assert metrics["skipped"] == 0
    moved = jax.tree.map(lambda a, b: not np.array_equal(a, b), jax.device_get(state.params), after.params)
    assert all(jax.tree.leaves(moved)), "a finite step updates every parameter"


def test_stop_names_the_step_and_a_rerun_with_skip_goes_past_it(tiny_config, in_process_cache, tmp_path):
    every_2 = "--config.checkpoint_every_steps=2"
    with pytest.raises(InputError, match=rf"^step {BAD_STEP} was not finite \(loss nan, grad_norm nan\); "
                                         r"stopped without applying or saving it \(the newest checkpoint is "
                                         r"step 2\): lower learning_rate, or set --config.nonfinite=skip"):
        loop.train(with_a_bad_batch(tiny_config(every_2)), str(tmp_path))
    assert complete_steps(tmp_path) == [2]

    state = loop.train(with_a_bad_batch(tiny_config(every_2, "--config.nonfinite=skip")), str(tmp_path))
    assert int(state.step) == 10
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get(state.params)))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    skipped = {r["step"]: r["skipped_steps"] for r in records}  # a step logged again keeps the last
    assert skipped == {step: float(step == BAD_STEP) for step in range(1, 11)}
    # Means leave the skipped step out: its loss describes no update.
    assert all(np.isfinite(r["loss"]) for r in records if r["step"] != BAD_STEP)
