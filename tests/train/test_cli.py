"""The `pretrain` and `plot` subcommands' help and their errors."""

import pytest

from albert_jax import cli
from albert_jax.train.cli import default_workdir


@pytest.mark.parametrize("command", ["pretrain", "plot"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([command, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert f"albert-jax {command}" in out
    if command == "pretrain":
        assert "--config.KEY=VALUE" in out and "--workdir" in out and "--coordinator-address" in out


def test_default_workdir_is_named_after_the_config():
    assert default_workdir(None) == "albert_jax_workdirs/tiny"
    assert default_workdir("configs/pretrain/base.py:v1") == "albert_jax_workdirs/base_v1"


def test_plot_of_a_directory_without_metrics(tmp_path, capsys):
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl does not exist" in capsys.readouterr().err
