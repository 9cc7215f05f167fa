"""The `pretrain` and `plot` subcommands' help and their errors."""

import subprocess
import sys

import pytest

from albert_jax import cli
from albert_jax.train.cli import default_workdir
from tests.train.helpers import TINY_CONFIG, cli_env


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


def test_pretrain_keeps_its_compiled_steps_in_the_albert_jax_cache(tmp_path, monkeypatch):
    """On by default (the other tests' runs set JAX_COMPILATION_CACHE_DIR, which wins)."""
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("ALBERT_JAX_CACHE", str(tmp_path / "cache"))
    env = {k: v for k, v in cli_env(1, "").items() if k != "JAX_COMPILATION_CACHE_DIR"}
    subprocess.run([sys.executable, "-m", "albert_jax.cli", "pretrain", "--config", TINY_CONFIG,
                    "--workdir", str(tmp_path / "run"), "--config.num_train_steps=1"],
                   env=env, check=True, capture_output=True, timeout=600)
    assert any((tmp_path / "cache" / "xla").iterdir())


def _compile_something() -> None:
    import jax
    import jax.numpy as jnp

    jax.jit(lambda x: jnp.sin(x) * 3).lower(jnp.ones(7)).compile()


def test_the_compilation_cache_is_on_for_a_command_and_off_after_it(tmp_path, monkeypatch):
    """In-process (`albert_jax.cli.main`), a command's compiles go to the albert_jax cache, and
    JAX is left as it was; a cache the caller set up wins."""
    import jax

    from albert_jax.train.cli import compilation_cache

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.setenv("ALBERT_JAX_CACHE", str(tmp_path / "cache"))
    previous = jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    try:
        assert jax.config.jax_compilation_cache_dir is None
        with compilation_cache():
            _compile_something()
        assert any((tmp_path / "cache" / "xla").iterdir())
        assert jax.config.jax_compilation_cache_dir is None

        jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
        with compilation_cache():
            assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")
    finally:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", previous)
        jax.config.update("jax_compilation_cache_dir", None)
        from jax.experimental.compilation_cache import compilation_cache as jax_cache

        jax_cache.reset_cache()
