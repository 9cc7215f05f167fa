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


@pytest.fixture(scope="module")
def in_process_cache(compile_cache):
    """Compiles of the module's tests go through the session's cache (see compiles_cached_in);
    other modules compile as JAX does by default (test_aot compiles for TPUs, uncached)."""
    from tests.train.helpers import compiles_cached_in

    with compiles_cached_in(compile_cache):
        yield


@pytest.fixture
def needs_gpu():
    """Skips the test unless JAX runs on an NVIDIA GPU (`JAX_PLATFORMS=cuda`, as
    scripts/gpu_check.sh runs these tests); asked at setup, so that collecting starts no backend."""
    import jax

    if jax.default_backend() != "gpu":
        pytest.skip("needs an NVIDIA GPU: JAX_PLATFORMS=cuda (scripts/gpu_check.sh)")
