"""Bad input to `albert-jax pretrain`: one clear message, exit code 2, and the workdir untouched."""

import pytest

from tests.train.helpers import TINY_CONFIG, snapshot


def fails_cleanly(result, message):
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("albert-jax pretrain: error:")
    assert message in error, error


@pytest.mark.parametrize("args, devices, message", [
    (["--config.mesh.fsdb=2"], 1, "unknown config key 'mesh.fsdb'; did you mean mesh.fsdp"),
    (["--config.mesh.data=3"], 1, "mesh data=3 x fsdp=1 x tensor=1 has 3 devices, but there are 1 devices"),
    (["--config.global_batch_size=15"], 2, "global_batch_size 15 is not divisible by the data-parallel size 2"),
    (["--config.model.hidden_size=64"], 1, "holds a run of a different model (hidden_size 32 -> 64)"),
], ids=["unknown-key", "mesh-size", "batch-split", "other-model"])
def test_refused_without_touching_the_workdir(run_cli, trained_workdir, args, devices, message):
    before = snapshot(trained_workdir)
    result = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", trained_workdir, *args,
                     devices=devices, check=False)
    fails_cleanly(result, message)
    assert snapshot(trained_workdir) == before


def test_tokenizer_that_disagrees_with_the_model(run_cli, tmp_path, prepared_corpus):
    tokenizer, dataset = prepared_corpus
    workdir = tmp_path / "new"
    result = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir,
                     f"--config.data.source={dataset}", f"--config.data.tokenizer={tokenizer}",
                     "--config.model.vocab_size=300", check=False)
    fails_cleanly(result, "has 256 pieces but the model's vocab_size is 300")
    assert not workdir.exists()


@pytest.mark.parametrize("args, message", [
    (["--config.optimizer=adamw"], "optimizer: 'lamb' -> 'adamw'"),
    (["--config.global_batch_size=8"], "global_batch_size: 16 -> 8"),
    (["--config.seed=1", "--config.data.max_predictions_per_seq=4"],
     "data.max_predictions_per_seq: 5 -> 4; seed: 0 -> 1"),
    (["--config.data.shuffle_window=0"], "data.shuffle_window must be at least 1"),
], ids=["optimizer", "batch", "seed-and-masking", "bad-value"])
def test_a_changed_run_is_refused_before_anything_is_written(run_cli, trained_workdir, args, message):
    before = snapshot(trained_workdir)
    result = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", trained_workdir,
                     "--config.num_train_steps=3", *args, check=False)
    fails_cleanly(result, message)
    assert snapshot(trained_workdir) == before
