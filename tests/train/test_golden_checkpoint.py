"""Checkpoint compatibility: a workdir an earlier albert_jax wrote (tests/data/golden_checkpoint,
checkpoint format 1, made by its make.py) keeps resuming, to exactly the losses its uninterrupted
run had, and keeps loading with `from_pretrained`. A change of the checkpoint layout brings a
migration (see "Format history" in albert_jax/train/checkpoint.py) that keeps these tests as
they are; the golden files are never remade to make them pass."""

import json
import logging
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from albert_jax import AlbertForPreTraining
from albert_jax.tasks.registry import resolve
from albert_jax.train import config as config_lib
from albert_jax.train import loop
from tests.train.helpers import checkpoint_params, losses

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_checkpoint"


def test_the_golden_workdir_resumes_to_the_losses_of_its_uninterrupted_run(tmp_path, in_process_cache):
    workdir = tmp_path / "golden"
    shutil.copytree(GOLDEN / "workdir", workdir)
    # An older workdir lacks the training-config keys added since; they ran as their defaults.
    train_config = workdir / "train_config.json"
    saved = json.loads(train_config.read_text())
    del saved["nonfinite"]
    train_config.write_text(json.dumps(saved))

    loop.train(resolve(config_lib.load_config(str(GOLDEN / "config.py"))), str(workdir))
    expected = {int(step): loss for step, loss in json.loads((GOLDEN / "expected.json").read_text())["losses"].items()}
    assert losses(workdir) == pytest.approx(expected, rel=1e-6)


def test_the_golden_workdir_loads_with_from_pretrained(caplog):
    with caplog.at_level(logging.WARNING):
        model = AlbertForPreTraining.from_pretrained(GOLDEN / "workdir")
    # orbax warned that `<step>/params` has no metadata file of a whole step
    assert not caplog.records
    jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                 checkpoint_params(GOLDEN / "workdir", 2))
