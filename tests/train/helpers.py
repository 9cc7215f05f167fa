"""Helpers of the trainer tests, shared by the test modules and the subprocess workers."""

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

TINY_CONFIG = str(Path(__file__).with_name("tiny_config.py"))
FAULT_WORKER = Path(__file__).with_name("fault_worker.py")
# The persistent compilation cache of the tests: every program goes into it, however small or
# quick to compile. A size limit makes JAX lock the cache directory around each read and write,
# so processes that write an entry at the same time (xdist workers, the processes of one
# multi-process run) never read one half written; the limit itself is never reached.
CACHE_ENV = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
             "JAX_COMPILATION_CACHE_MAX_SIZE": str(2**40)}


def cli_env(devices: int, compile_cache: str) -> dict[str, str]:
    """Environment of a subprocess with `devices` simulated CPU devices and the shared cache."""
    env = dict(os.environ)
    env.update({
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "JAX_COMPILATION_CACHE_DIR": compile_cache,
        **CACHE_ENV,
        "PYTHONUNBUFFERED": "1",  # output comes as it is printed, for tests that wait for a line
    })
    return env


@contextlib.contextmanager
def compiles_cached_in(cache: str) -> Iterator[None]:
    """Compiles in this process go through the persistent cache `cache` (as the subprocesses of
    `cli_env` do), so runs here and in subprocesses compile each program once (the cache key
    leaves out the simulated device count). In-process `albert-jax pretrain` keeps to it too,
    rather than switching to the user's cache."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    settings = {"jax_compilation_cache_dir": cache,
                **{name.lower(): int(value) for name, value in CACHE_ENV.items()}}
    previous = {name: getattr(jax.config, name) for name in settings}
    previous_env = os.environ.get("JAX_COMPILATION_CACHE_DIR")
    for name, value in settings.items():
        jax.config.update(name, value)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    compilation_cache.reset_cache()  # JAX decides whether to cache once, at its first compile
    try:
        yield
    finally:
        for name, value in previous.items():
            jax.config.update(name, value)
        if previous_env is None:
            del os.environ["JAX_COMPILATION_CACHE_DIR"]
        else:
            os.environ["JAX_COMPILATION_CACHE_DIR"] = previous_env
        compilation_cache.reset_cache()


def losses(workdir) -> dict[int, float]:
    """Training loss per step from WORKDIR/metrics.jsonl; a step logged again (after a resume)
    keeps its last value."""
    out = {}
    with open(Path(workdir) / "metrics.jsonl") as f:
        for line in f:
            record = json.loads(line)
            if "loss" in record:
                out[record["step"]] = record["loss"]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(directory) -> dict[str, bytes]:
    """Every file under `directory` with its contents, to show that nothing changed."""
    root = Path(directory)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def checkpoint_params(workdir, step: int) -> dict:
    """The parameters saved at `step`, as numpy arrays."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(Path(workdir).absolute() / "checkpoints" / str(step) / "params")


def complete_steps(workdir) -> list[int]:
    """Steps of the checkpoints in `workdir` that are complete (orbax renames a step folder to
    its number only once everything in it is written)."""
    directory = Path(workdir) / "checkpoints"
    return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.exists() else []
