"""Shared test settings: CPU only, quiet TensorFlow, float32 matmuls at full precision."""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    """A persistent XLA compilation cache shared by the subprocesses of one test session:
    runs of the same program (a run and its resumption) compile once."""
    return str(tmp_path_factory.mktemp("xla_cache"))
