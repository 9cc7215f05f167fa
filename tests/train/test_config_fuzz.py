"""Hostile input to `albert-jax pretrain` (generated overrides of every key: wrong types, zero
and negative sizes, NaN and Inf, impossible meshes, unknown keys; bad paths): the command either
passes every check and reaches training, or refuses with one line and exit 2. Never a traceback,
and nothing in the workdir changes either way. Runs the CLI in this process, stopped where
training would start."""

import contextlib
import io
import os
import shutil
import subprocess

import ml_collections
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import albert_jax.cli
from albert_jax.train import config as config_lib
from albert_jax.train import loop
from tests.train.helpers import TINY_CONFIG, snapshot


class ReachedTraining(Exception):
    """Raised where training would start: every check passed."""


@pytest.fixture
def stop_before_training(monkeypatch, in_process_cache):
    def reached(checked):
        raise ReachedTraining

    monkeypatch.setattr(loop, "_train", reached)


def run_command(command: str, *args) -> tuple[int | None, str]:
    """(exit status, or None when training was reached; stderr) of `albert-jax COMMAND ARGS`."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            status = albert_jax.cli.main([command, *map(str, args)])
        except ReachedTraining:
            status = None
    return status, stderr.getvalue()


def pretrain(*args) -> tuple[int | None, str]:
    return run_command("pretrain", *args)


def assert_refused(status: int | None, stderr: str, message: str = "", command: str = "pretrain") -> None:
    lines = stderr.strip().splitlines()
    assert status == 2, stderr
    assert len(lines) == 1 and lines[0].startswith(f"albert-jax {command}: error: "), stderr
    assert message in lines[0]


def leaf_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    keys = []
    for name, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            keys.extend(leaf_keys(value, f"{prefix}{name}."))
        else:
            keys.append(prefix + name)
    return keys


KEYS = sorted(leaf_keys(config_lib.load_config(TINY_CONFIG)))
VALUES = st.one_of(
    st.integers(-3, 70).map(str),  # sizes near the tiny config's
    st.integers(-2**40, 2**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "0", "-1", "1", "2", "nan", "inf", "-inf", "1e309", "true", "None", "abc",
                     "()", "[]", "((1, 2),)", "(('batch', 'nope'),)", "(('batch', None),)", "{'a': 1}",
                     "'x'", "/nonexistent", "lamb", "adamw", "skip", "base-v2", "bfloat16"]),
    st.text(max_size=6),
)


def overrides(keys: list[str]) -> st.SearchStrategy[list[str]]:
    """One to three `--config.KEY=VALUE` of `keys` and of keys that do not exist."""
    return st.lists(st.builds(lambda key, value: f"--config.{key}={value}",
                              st.sampled_from([*keys, "mesh.fsdb", "lr", "model.hidden"]),
                              VALUES), min_size=1, max_size=3)


OVERRIDES = overrides(KEYS)


@pytest.fixture
def existing_workdir(finished_workdir, tmp_path):
    shutil.copytree(finished_workdir, tmp_path / "existing")
    return tmp_path / "existing"


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(overrides=OVERRIDES, resume=st.booleans())
def test_any_override_reaches_training_or_is_one_line_and_writes_nothing(
        overrides, resume, existing_workdir, tmp_path, stop_before_training):
    workdir = existing_workdir if resume else tmp_path / "new"
    before = snapshot(existing_workdir)
    status, stderr = pretrain("--config", TINY_CONFIG, "--workdir", workdir, *overrides)
    if status is not None:
        assert_refused(status, stderr)
    assert not (tmp_path / "new").exists()
    assert snapshot(existing_workdir) == before


@pytest.mark.parametrize("override, message", [
    ("--config.learning_rate=nan", "learning_rate must be a finite positive number, got nan"),
    ("--config.learning_rate=inf", "learning_rate must be a finite positive number, got inf"),
    ("--config.adam_beta2=1", "adam_beta2 must be in [0, 1), got 1.0"),
    ("--config.global_batch_size=0", "global_batch_size must be positive, got 0"),
    ("--config.model.hidden_size=-32", "hidden_size must be a positive integer, got -32"),
    ("--config.mesh.tensor=0", "give positive sizes"),
    ("--config.seed=-1", "seed must be in [0, 2**32), got -1"),
    ("--config.nonfinite=ignore", "unknown nonfinite 'ignore'; choose stop or skip"),
    ("--config.rules=(('batch', 'nope'),)", "rules: ('batch', 'nope') maps to 'nope'"),
    ("--config.rules=(('batch', None),)", "rules: no rule for the logical axes vocab, embed"),
    ("--config.model.layer_norm_eps=-1", "layer_norm_eps must be a finite positive number, got -1.0"),
    ("--config.model.initializer_range=nan", "initializer_range must be a finite non-negative number"),
])
def test_bad_values_are_named(override, message, tmp_path, stop_before_training):
    assert_refused(*pretrain("--config", TINY_CONFIG, "--workdir", tmp_path / "new", override), message)
    assert not (tmp_path / "new").exists()


def test_bad_paths_are_named(tmp_path, stop_before_training):
    file = tmp_path / "file"
    file.write_text("")
    checkpoints_file = tmp_path / "run"
    checkpoints_file.mkdir()
    (checkpoints_file / "checkpoints").write_text("")
    cases = [
        (["--workdir", file], f"workdir {file} is a file, not a directory"),
        (["--workdir", file / "run"], f"workdir {file / 'run'} cannot be made: {file} is a file"),
        (["--workdir", checkpoints_file],
         f"{checkpoints_file / 'checkpoints'} is a file, but a run keeps a directory there"),
        (["--workdir", tmp_path / "new", "--config.init_from=/nonexistent"], "/nonexistent"),
        (["--workdir", tmp_path / "new", "--config.data.source=/nonexistent",
          "--config.data.tokenizer=/nonexistent.model"], "/nonexistent"),
    ]
    for args, message in cases:
        before = snapshot(tmp_path)
        assert_refused(*pretrain("--config", TINY_CONFIG, *args), message)
        assert snapshot(tmp_path) == before
    assert not (tmp_path / "new").exists()
    status, stderr = pretrain("--config", tmp_path / "nonexistent.py", "--workdir", tmp_path / "new")
    assert_refused(status, stderr, "config file")


def test_a_workdir_the_checks_cannot_foresee_failing_is_refused_when_made(tmp_path, in_process_cache):
    workdir = tmp_path / ("x" * 300) / "run"  # a folder name longer than file systems allow
    assert_refused(*pretrain("--config", TINY_CONFIG, "--workdir", workdir),
                   f"workdir {workdir} cannot be made: File name too long; use another --workdir")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_workdir_is_refused(tmp_path, stop_before_training):
    workdir = tmp_path / "read-only"
    workdir.mkdir()
    if os.geteuid() != 0:
        workdir.chmod(0o500)
    elif subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(workdir)],
                        capture_output=True, check=False).returncode != 0:
        pytest.skip("running as root without permission to mount: nothing is read-only to root")
    try:
        assert_refused(*pretrain("--config", TINY_CONFIG, "--workdir", workdir),
                       f"{workdir} is not writable")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(workdir)], check=True)
        else:
            workdir.chmod(0o700)
