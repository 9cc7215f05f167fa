"""Shared test settings: CPU only, quiet TensorFlow, float32 matmuls at full precision."""

import os

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# gs:// through gcsfs, which the Cloud Storage tests point at an emulator (tests/gcs): epath would
# take TensorFlow's tf.io.gfile, which cannot be pointed at one. Set before epath first decides.
os.environ.setdefault("EPATH_USE_TF", "false")


@pytest.fixture(scope="session")
def compile_cache(tmp_path_factory):
    """A persistent XLA compilation cache shared by the subprocesses of one test session:
    runs of the same program (a run and its resumption) compile once."""
    return str(tmp_path_factory.mktemp("xla_cache"))
