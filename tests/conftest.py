"""Shared test settings: CPU only, quiet TensorFlow, float32 matmuls at full precision; one
compilation cache for the whole test session."""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# gs:// through gcsfs, which the Cloud Storage tests point at an emulator (tests/gcs): epath would
# take TensorFlow's tf.io.gfile, which cannot be pointed at one. Set before epath first decides.
os.environ.setdefault("EPATH_USE_TF", "false")


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    """A persistent XLA compilation cache shared by every process of one test session: the xdist
    workers and their subprocesses. Compiling dominates the trainer tests' time on CPU, and most
    runs compile the same few programs (the tiny config's), so each compiles once per session."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # each worker's temporary folder is in the session's
    cache = base / "xla_cache"
    cache.mkdir(exist_ok=True)
    return str(cache)


@pytest.fixture(scope="session")
def in_process_cache(compile_cache):
    """Compiles in the test process go through the session's persistent cache too, so runs in
    this process and in subprocesses compile each program once (the cache key leaves out the
    simulated device count). In-process `albert-jax pretrain` keeps to it as well, rather than
    switching to the user's cache."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    from tests.train.helpers import CACHE_ENV

    settings = {"jax_compilation_cache_dir": compile_cache,
                **{name.lower(): int(value) for name, value in CACHE_ENV.items()}}
    previous = {name: getattr(jax.config, name) for name in settings}
    for name, value in settings.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()  # JAX decides whether to cache once, at its first compile
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JAX_COMPILATION_CACHE_DIR", compile_cache)
        yield
    for name, value in previous.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()
