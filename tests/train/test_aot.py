"""Ahead-of-time compilation of the real train step for a TPU slice, on this CPU machine."""

import pytest

from albert_jax.errors import InputError
from albert_jax.tasks.registry import resolve
from albert_jax.train import aot
from albert_jax.train import config as config_lib
from albert_jax.train.devices import GiB

pytest.importorskip("libtpu")
TINY = "tests/train/tiny_config.py"


def test_tiny_config_compiles_for_a_v5e_slice():
    run = resolve(config_lib.load_config(TINY, ["--config.grad_accum_steps=2"]))
    report = aot.compile_for_topology(run, "v5e:2x2")
    assert (report.num_devices, report.device_kind) == (4, "TPU v5 lite")
    assert report.mesh_shape == {"data": 4, "fsdp": 1, "tensor": 1}
    assert report.hbm_bytes == 16 * GiB and report.headroom
    # Two float32 moments per parameter, plus a few scalars (step counts).
    assert 2 * report.params_bytes <= report.optimizer_bytes < 2 * report.params_bytes + 64
    assert report.temporaries_bytes > 0
    # The compiler's count (from the loop-free twin) agrees with the analytic model FLOPs.
    assert 0.8 < report.compiler_flops / report.model_flops < 1.5
    assert report.step_seconds is not None and report.step_seconds > 0
    assert 0 < report.mfu < 1
    text = report.format()
    assert "per chip:" in text and "estimated step time" in text and "(fits)" in text


def test_a_config_that_does_not_fit_fails_clearly():
    run = resolve(config_lib.load_config(TINY, ["--config.global_batch_size=1048576", "--config.seq_length=64"]))
    with pytest.raises(InputError, match=r"does not fit v5e:2x2: RESOURCE_EXHAUSTED: .*exceeds available HBM"):
        aot.compile_for_topology(run, "v5e:2x2")


def test_unknown_topology_is_named():
    with pytest.raises(InputError, match="unknown TPU topology 'v9z:3x3'"):
        aot.topology_devices("v9z:3x3")


def test_a_shape_libtpu_refuses_is_not_called_unknown():
    with pytest.raises(InputError, match="libtpu cannot describe a v5e slice of shape 3x7") as error:
        aot.topology_devices("v5e:3x7")
    assert error.value.__cause__ is not None, "libtpu's own error stays chained"


def test_unknown_flops_print_as_unknown():
    report = aot.CompileReport(
        topology="v5e:2x2", device_kind="TPU v5 lite", num_devices=4, mesh_shape={"data": 4},
        params_bytes=1, optimizer_bytes=2, batch_bytes=3, temporaries_bytes=4, code_bytes=5,
        total_bytes=15, hbm_bytes=None, compiler_flops=None, model_flops=1e12, step_seconds=None,
        peak_flops=None)
    text = report.format()
    assert "unknown as compiled" in text and "estimated MFU           unknown" in text
    assert " 0.00 TFLOP as compiled" not in text


def test_compile_command_prints_the_report(capsys):
    from albert_jax.cli import main

    assert main(["compile", "--config", TINY, "--topology", "v5e:2x2", "--config.seq_length=16"]) == 0
    out = capsys.readouterr().out
    assert "topology v5e:2x2: 4 x TPU v5 lite" in out and "activations and temps" in out
    assert main(["compile", "--config", TINY, "--topology", "v5e:2x2", "--config.nonsense=1"]) == 2
