"""Shared pieces of the trainer tests: the tiny config, and running the CLI in subprocesses."""

import subprocess
import sys

import pytest

from albert_jax.train import config as config_lib
from tests.train.helpers import FAULT_WORKER, TINY_CONFIG, cli_env, compiles_cached_in


@pytest.fixture
def tiny_config():
    """The tiny config with overrides: tiny_config("--config.k=v", ...)."""
    return lambda *overrides: config_lib.load_config(TINY_CONFIG, list(overrides))


@pytest.fixture
def run_cli(compile_cache):
    """Runs `albert-jax ARGS...` in a subprocess with `devices` simulated CPU devices; with
    `faults`, in tests/train/fault_worker.py with those options."""

    def run(*args, devices=1, check=True, faults=(), **popen):
        env = cli_env(devices, compile_cache)
        program = [str(FAULT_WORKER), *map(str, faults)] if faults else ["-m", "albert_jax.cli"]
        command = [sys.executable, *program, *map(str, args)]
        if popen:
            return subprocess.Popen(command, env=env, **popen)
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"albert-jax {' '.join(map(str, args))} failed "
                                 f"({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory):
    """(tokenizer .model, prepared dataset dir): 300 built-in documents, a 256-piece tokenizer
    (the tiny model's vocabulary), prepared as `albert-jax data prepare` would."""
    import itertools

    from albert_jax.data.corpus import BuiltinCorpus, TextFiles
    from albert_jax.data.prepare import prepare
    from albert_jax.data.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("corpus")
    text = root / "corpus.txt"
    documents = itertools.islice(BuiltinCorpus(), 300)
    text.write_text("\n\n".join("\n".join(sentences) for sentences in documents) + "\n")
    tokenizer = Tokenizer.train([text], 256, output_prefix=root / "tokenizer")
    prepare(TextFiles([text]), tokenizer, root / "prepared", num_workers=0, progress=False)
    return root / "tokenizer.model", root / "prepared"


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory, compile_cache):
    """A workdir holding a finished 2-step run of the tiny config."""
    workdir = tmp_path_factory.mktemp("trained")
    subprocess.run([sys.executable, "-m", "albert_jax.cli", "pretrain", "--config", TINY_CONFIG,
                    "--workdir", str(workdir), "--config.num_train_steps=2"],
                   env=cli_env(1, compile_cache), check=True, capture_output=True)
    return workdir


@pytest.fixture(scope="session")
def finished_workdir(tmp_path_factory, compile_cache):
    """A finished, uninterrupted run of the tiny config (10 steps, checkpoints at 5 and 10): the
    reference that interrupted and damaged runs must end up equal to."""
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import loop

    workdir = tmp_path_factory.mktemp("finished")
    with compiles_cached_in(compile_cache):
        loop.train(resolve(config_lib.load_config(TINY_CONFIG)), str(workdir))
    return workdir
