"""Ahead-of-time compilation of the real train step for a TPU slice, on this CPU machine."""

import collections
import importlib.util
from pathlib import Path

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


def test_several_steps_per_execution_compile_the_program_the_loop_runs():
    """With steps_per_execution N the report is of the N-step program (N batches held), its
    FLOPs and time still per step."""
    one, four = (aot.compile_for_topology(resolve(config_lib.load_config(TINY, [f"--config.steps_per_execution={n}"])),
                                          "v5e:2x2") for n in (1, 4))
    assert four.batch_bytes == 4 * one.batch_bytes > 0
    assert four.compiler_flops == one.compiler_flops and four.step_seconds == one.step_seconds
    assert four.model_flops == one.model_flops
    assert "(4 steps per execution)" in four.format() and "per execution" not in one.format()


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


def test_splash_kernels_flops_are_counted_per_call():
    rows, length, hidden = 4, 128, 32
    matmul = 2 * length * length * hidden * rows
    kernels = collections.Counter({"splash_mha_fwd_segmented_residuals": 2,
                                   "splash_mha_dq_segmented_no_residuals": 2,
                                   "splash_mha_dkv_segmented_no_residuals": 2})
    assert aot.splash_kernel_flops(kernels, rows, length, hidden) == (2 * (2 + 3 + 4) * matmul, ())
    # The fused backward has no dq kernel: its dkv kernel computes dQ as well.
    del kernels["splash_mha_dq_segmented_no_residuals"]
    kernels["my_kernel"] = 1
    assert aot.splash_kernel_flops(kernels, rows, length, hidden) == (2 * (2 + 5) * matmul, ("my_kernel",))


def test_mosaic_kernels_are_read_from_the_hlo():
    hlo = """
  %splash_mha_fwd_segmented_residuals.1 = (f32[4,128,128]{2,1,0}, bf16[4,4,128,8]{3,2,1,0}) custom-call(%a, %b), custom_call_target="tpu_custom_call", backend_config={}
  ROOT %my_kernel = f32[8]{0} custom-call(%c), custom_call_target="tpu_custom_call"
  %cudnn.2 = f32[8]{0} custom-call(%c), custom_call_target="__cudnn$fmha"
  %splash_mha_fwd_segmented_residuals.2.clone = (f32[4,128,128]{2,1,0}) custom-call(%a), custom_call_target="tpu_custom_call"
"""
    assert aot.mosaic_kernels(hlo) == {"splash_mha_fwd_segmented_residuals": 2, "my_kernel": 1}


def test_splash_flops_are_counted_and_timed_with_packed_rows():
    """XLA's cost analysis counts no FLOPs of a Mosaic kernel: the report adds splash's own,
    from the loop-free twin's calls scaled like the rest of its cost (two microbatches here)."""
    run = resolve(config_lib.load_config(TINY, [
        "--config.model.attention_implementation=splash", "--config.data.packing=True",
        "--config.seq_length=128", "--config.model.max_position_embeddings=128",
        "--config.grad_accum_steps=2"]))
    report = aot.compile_for_topology(run, "v5e:2x2")
    layers, rows_per_chip = 2, 16 / 4
    # Per layer and row: splash's 9 matmuls of 2 * S * S * H FLOPs (forward 2, dq 3, dkv 4).
    assert report.kernel_flops == layers * rows_per_chip * 9 * 2 * 128 * 128 * 32
    assert report.unknown_kernels == ()
    assert 0.8 < (report.compiler_flops + report.kernel_flops) / report.model_flops < 1.6
    assert report.estimated_seconds == report.step_seconds + report.kernel_flops / report.peak_flops
    assert 0 < report.mfu < 1
    assert "TFLOP in splash kernels (counted here: XLA does not)" in report.format()


def test_a_mosaic_kernel_of_unknown_cost_leaves_the_time_unknown():
    report = aot.CompileReport(
        topology="v5e:2x2", device_kind="TPU v5 lite", num_devices=4, mesh_shape={"data": 4},
        params_bytes=1, optimizer_bytes=2, batch_bytes=3, temporaries_bytes=4, code_bytes=5,
        total_bytes=15, hbm_bytes=None, compiler_flops=1e12, model_flops=1e12, step_seconds=0.1,
        peak_flops=197e12, kernel_flops=1e11, unknown_kernels=("my_kernel",))
    assert report.estimated_seconds is None and report.mfu is None
    assert "unknown (XLA counts no FLOPs of the Mosaic kernels my_kernel)" in report.format()


def test_mfu_table_row_counts_useful_tokens():
    spec = importlib.util.spec_from_file_location(
        "tpu_mfu", Path(__file__).parents[2] / "scripts" / "tpu_mfu.py")
    tpu_mfu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tpu_mfu)
    report = aot.CompileReport(
        topology="v5p:4x4x4", device_kind="TPU v5", num_devices=64, mesh_shape={"data": 64},
        params_bytes=1, optimizer_bytes=2, batch_bytes=3, temporaries_bytes=4, code_bytes=5,
        total_bytes=40 * GiB, hbm_bytes=95 * GiB, compiler_flops=17e12, model_flops=18e12,
        step_seconds=0.08, peak_flops=450e12, kernel_flops=4.5e12)
    row = tpu_mfu.format_row(["base.py:v2", "v5p:4x4x4", "splash", "padded"], report, padding=0.4)
    # 18 TFLOP in 80 ms + 10 ms at 450 TFLOP/s: 44.4% MFU; 60% of the tokens are real.
    assert row == ("| base.py:v2 | v5p:4x4x4 | splash | padded | 40.0 of 95 GiB | 18.00 / 17.00 (+ 4.50) "
                   "| 90.0 ms | 44.4% | 40.0% | 26.7% |")


def test_compile_command_prints_the_report(capsys):
    from albert_jax.cli import main

    assert main(["compile", "--config", TINY, "--topology", "v5e:2x2", "--config.seq_length=16"]) == 0
    out = capsys.readouterr().out
    assert "topology v5e:2x2: 4 x TPU v5 lite" in out and "activations and temps" in out
    assert main(["compile", "--config", TINY, "--topology", "v5e:2x2", "--config.nonsense=1"]) == 2
