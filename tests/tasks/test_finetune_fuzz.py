"""Hostile overrides of every key of a fine-tuning config, through `albert-jax finetune`: the
run either passes every check and reaches training, or is refused with one line and exit 2.
Never a traceback, and nothing is written before training either way. Runs in this process,
stopped where training would start (tests/train/test_config_fuzz.py does the same for
`pretrain`)."""

import pytest
from hypothesis import HealthCheck, given, settings

from albert_jax.train import config as config_lib
from albert_jax.train import loop
from tests.train.test_config_fuzz import ReachedTraining, assert_refused, leaf_keys, overrides, run_command

CLASSIFICATION = "finetune/classification.py"


@pytest.fixture
def local_args(pretrained_dir, sentiment_files, monkeypatch):
    def reached(checked):
        raise ReachedTraining

    monkeypatch.setattr(loop, "_train", reached)
    train, dev = sentiment_files
    return ["--config", CLASSIFICATION, f"--config.init_from={pretrained_dir}",
            "--config.data.text_column=sentence", f"--config.data.train_file={train}",
            f"--config.data.dev_file={dev}", "--config.num_train_steps=2"]


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(hostile=overrides(sorted(leaf_keys(config_lib.load_config(CLASSIFICATION)))))
def test_any_override_reaches_training_or_is_one_line_and_writes_nothing(hostile, local_args, tmp_path):
    workdir = tmp_path / "run"
    status, stderr = run_command("finetune", "--workdir", workdir, *local_args, *hostile)
    if status is not None:
        assert_refused(status, stderr, command="finetune")
    assert not workdir.exists()
