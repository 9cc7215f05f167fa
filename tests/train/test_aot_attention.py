"""`albert-jax compile` lowers splash attention (the TPU kernel "auto" picks there) for a real TPU
topology, packed rows included."""

import pytest

from albert_jax.tasks.registry import resolve
from albert_jax.train import aot
from albert_jax.train import config as config_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import step as step_lib

pytest.importorskip("libtpu")
TINY = "tests/train/tiny_config.py"


def test_auto_attention_lowers_to_splash_for_a_v5e_slice():
    """Packed rows: splash with real segment ids (padded rows take the same path, ids 0 and 1)."""
    run = resolve(config_lib.load_config(TINY, ["--config.seq_length=128", "--config.model.max_position_embeddings=128",
                                                   "--config.data.packing=true"]))
    assert run.model.attention_implementation == "auto"
    devices = aot.topology_devices("v5e:2x2")
    program = step_lib.build_program(run, mesh_lib.make_mesh(**run.config.mesh, devices=devices))
    lowered = program.train_step.lower(*program.train_args())
    text = lowered.as_text()
    # The Pallas kernels (forward, and the dq and dkv kernels of the backward pass) are TPU
    # custom calls, one per kernel in the scanned layer body.
    assert text.count("tpu_custom_call") >= 3 and "splash" in text
    lowered.compile()
