"""Ahead-of-time compilation of the real train step for a TPU slice, on a machine without TPUs.

libtpu (`pip install 'albert_jax[tpu]'`) carries the TPU compiler; `jax.experimental.topologies`
describes a slice's devices without owning them. The step is built exactly as `albert-jax
pretrain` builds it (`step.build_program`), lowered from abstract inputs and compiled, and the
compiler's own memory and cost analyses are reported per chip, so a pod config can be checked
before anyone pays for the pod.

XLA's cost analysis sees a Mosaic (Pallas) kernel, such as splash attention, as an opaque custom
call: it charges the call's operand and result bytes but none of its FLOPs. The report counts the
splash kernels' FLOPs analytically and adds their time at the chip's peak FLOP/s to the
compiler's estimate; for any other Mosaic kernel the step time and MFU are reported as unknown.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import re

import jax
import ml_collections

from albert_jax.errors import InputError
from albert_jax.train import devices as devices_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import step as step_lib
from albert_jax.train.config import Run
from albert_jax.train.devices import GiB

# The generations libtpu's topology names use.
TPU_GENERATIONS = ("v2", "v3", "v4", "v5e", "v5p", "v6e")

# A Mosaic kernel in compiled HLO: `%NAME = ... custom_call_target="tpu_custom_call"`, where
# XLA may have suffixed NAME with `.N` or `.clone` (kernel names have no dots).
_MOSAIC_CALL = re.compile(r'^\s*(?:ROOT )?%(\w+)[\w.]* = .*custom_call_target="tpu_custom_call"', re.MULTILINE)
# Matmuls of each splash kernel per row and head, each 2 * S * S * head_dim FLOPs for S queries
# and keys, every block computed (the model's mask is full; segment ids skip no block):
# forward Q K^T, P V; dq: Q K^T again, dO V^T, dS K; dkv: Q K^T again, dO V^T, P^T dO, dS^T Q.
_SPLASH_MATMULS = {"splash_mha_fwd": 2, "splash_mha_dq": 3, "splash_mha_dkv": 4}


def topology_devices(name: str) -> list[jax.Device]:
    """The devices of a TPU slice named like `v4:2x2x2`, `v5e:4x4`, `v5p:4x4x4`, `v6e:8x8`."""
    try:
        import libtpu  # noqa: F401
    except ImportError:
        raise InputError("compiling for a TPU topology needs libtpu: pip install 'albert_jax[tpu]'") from None
    from jax.experimental import topologies

    # Set before libtpu starts, so it does not look for the TPU VM it is not running on.
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", "v4-8")
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
    # Describing a slice opens no chip, so it may run beside a process that holds libtpu's lock
    # (a training run on the same TPU VM, or another compile).
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    # JAX drives a v4 chip's two TensorCores as one device ("megacore"); the description must too.
    options = {"chip_config_name": "megacore"} if name.startswith("v4:") else {}
    generation, _, shape = name.partition(":")
    if generation not in TPU_GENERATIONS or not re.fullmatch(r"\d+(x\d+){1,2}", shape):
        raise InputError(f"unknown TPU topology {name!r}: use GENERATION:SHAPE with a generation of "
                         f"{', '.join(TPU_GENERATIONS)}, e.g. v4:2x2x2, v5e:4x4, v5p:4x4x4 or v6e:8x8")
    try:
        return list(topologies.get_topology_desc(topology_name=name, platform="tpu", **options).devices)
    except Exception as error:  # libtpu reports its refusals with assorted exception types
        raise InputError(f"libtpu cannot describe a {generation} slice of shape {shape} "
                         f"({str(error).strip().splitlines()[0]})") from error


@dataclasses.dataclass(frozen=True)
class CompileReport:
    """What one chip of the slice would hold and do in one train step (the memory: of the
    program the loop runs, which with `steps_per_execution` N holds N batches)."""

    topology: str
    device_kind: str
    num_devices: int
    mesh_shape: dict[str, int]
    params_bytes: int
    optimizer_bytes: int
    batch_bytes: int
    temporaries_bytes: int  # activations kept for the backward pass, and every other temporary
    code_bytes: int
    total_bytes: int
    hbm_bytes: int | None
    compiler_flops: float | None  # per chip, as XLA counts them (remat included); None: unknown
    model_flops: float  # per chip, counted analytically (see metrics.train_flops_per_example)
    step_seconds: float | None  # the compiler's estimate (Mosaic kernels: their bytes, not FLOPs)
    peak_flops: float | None
    # Per chip, FLOPs of the splash kernels, which the compiler's count and estimate leave out:
    # counted analytically and added to the step time at peak FLOP/s (see `estimated_seconds`).
    kernel_flops: float = 0.0
    unknown_kernels: tuple[str, ...] = ()  # Mosaic kernels of unknown cost: no time estimate
    steps_per_execution: int = 1  # batches in `batch_bytes`

    @property
    def kernel_seconds(self) -> float | None:
        """The splash kernels' FLOPs at the chip's peak rate (a lower bound of their time)."""
        if not self.kernel_flops:
            return 0.0
        return self.kernel_flops / self.peak_flops if self.peak_flops else None

    @property
    def estimated_seconds(self) -> float | None:
        """The compiler's step-time estimate plus `kernel_seconds`; None where unknown."""
        if not self.step_seconds or self.unknown_kernels or self.kernel_seconds is None:
            return None
        return self.step_seconds + self.kernel_seconds

    @property
    def headroom(self) -> bool:
        """XLA placed the program (it refuses one that does not fit); this says whether the sum
        of its buffer sizes also stays under HBM, i.e. whether some memory is left to spare."""
        return self.hbm_bytes is None or self.total_bytes <= self.hbm_bytes

    @property
    def mfu(self) -> float | None:
        if not self.estimated_seconds or not self.peak_flops:
            return None
        return self.model_flops / self.estimated_seconds / self.peak_flops

    def format(self) -> str:
        hbm = f" of {self.hbm_bytes / GiB:.1f} GiB HBM" if self.hbm_bytes else ""
        mesh = " x ".join(f"{k}={v}" for k, v in self.mesh_shape.items())
        lines = [
            f"topology {self.topology}: {self.num_devices} x {self.device_kind}, mesh {mesh}",
            "per chip:",
            f"  parameters            {self.params_bytes / GiB:9.3f} GiB",
            f"  optimizer state       {self.optimizer_bytes / GiB:9.3f} GiB",
            f"  batch                 {self.batch_bytes / GiB:9.3f} GiB"
            + (f" ({self.steps_per_execution} steps per execution)" if self.steps_per_execution > 1 else ""),
            f"  activations and temps {self.temporaries_bytes / GiB:9.3f} GiB",
            f"  program code          {self.code_bytes / GiB:9.3f} GiB",
            f"  total                 {self.total_bytes / GiB:9.3f} GiB{hbm}"
            f" ({'fits' if self.headroom else 'compiled, but the buffers sum above HBM: no headroom'})",
            f"  FLOPs per step        {self.model_flops / 1e12:9.2f} TFLOP model, "
            + (f"{self.compiler_flops / 1e12:.2f} TFLOP as compiled" if self.compiler_flops
               else "unknown as compiled")
            + (f" + {self.kernel_flops / 1e12:.2f} TFLOP in splash kernels (counted here: XLA "
               "does not)" if self.kernel_flops else ""),
        ]
        seconds = self.estimated_seconds
        if seconds and self.kernel_flops:
            lines.append(f"  estimated step time   {seconds * 1e3:9.1f} ms (compiler's estimate "
                         f"{self.step_seconds * 1e3:.1f} ms + the splash kernels' FLOPs at peak "
                         f"{self.kernel_seconds * 1e3:.1f} ms)")
        elif seconds:
            lines.append(f"  estimated step time   {seconds * 1e3:9.1f} ms (compiler's estimate)")
        elif self.unknown_kernels:
            lines.append("  estimated step time     unknown (XLA counts no FLOPs of the Mosaic kernels "
                         f"{', '.join(self.unknown_kernels)})")
        else:
            lines.append("  estimated step time     unknown")
        lines.append(f"  estimated MFU         {self.mfu:9.1%}" if self.mfu is not None
                     else "  estimated MFU           unknown")
        return "\n".join(lines)


def _bytes_per_device(tree) -> int:
    """Bytes one device holds of an abstract tree whose leaves carry shardings (the largest shard)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shard = leaf.sharding.shard_shape(leaf.shape)
        total += math.prod(shard) * leaf.dtype.itemsize
    return total


class _DoesNotFit(Exception):
    """XLA found that the program's buffers exceed the device memory."""


def _compile(run: Run, devices: list[jax.Device]):
    """(program, its batch argument, the compiled program the loop runs most): one train step,
    or with `steps_per_execution` N, N steps over N stacked batches."""
    mesh = mesh_lib.make_mesh(**run.config.mesh, devices=devices)
    program = step_lib.build_program(run, mesh)
    repeat = run.config.steps_per_execution
    try:
        if repeat > 1:
            batches = program.abstract_batches_of(repeat, max(program.abstract_batches))
            return program, batches, program.train_steps.lower(program.abstract_state, batches).compile()
        return program, program.abstract_batch, program.train_step.lower(*program.train_args()).compile()
    except Exception as error:  # XLA reports an over-full HBM as a compile error
        if "RESOURCE_EXHAUSTED" in str(error):
            raise _DoesNotFit(str(error).splitlines()[0]) from None
        raise


@dataclasses.dataclass(frozen=True)
class _Cost:
    """One train step's cost per chip from XLA's cost analysis; None where unknown."""

    flops: float | None
    seconds: float | None
    kernel_flops: float  # of the splash kernels, which XLA does not count
    unknown_kernels: tuple[str, ...]

    def times(self, parts: int) -> _Cost:
        return _Cost(self.flops and parts * self.flops, self.seconds and parts * self.seconds,
                     parts * self.kernel_flops, self.unknown_kernels)


def _loop_free_cost(run: Run, devices: list[jax.Device]) -> _Cost | None:
    """The cost of one train step from a loop-free twin of the step; None where unknown.

    XLA's cost analysis does not see into loops, so a scanned program's FLOPs and time
    estimates are meaningless. The twin unrolls the layers and takes one microbatch, halved
    further while it does not fit (unrolling keeps more alive); its cost is scaled back up.
    """
    config = run.config
    twin_config = ml_collections.ConfigDict(config.to_dict())
    twin_config.grad_accum_steps = 1
    twin_config.steps_per_execution = 1
    twin = run.replace(config=twin_config, model=run.model.replace(scan_layers=False))
    parts = config.grad_accum_steps
    while True:
        twin_config.global_batch_size = config.global_batch_size // parts
        try:
            program, _, compiled = _compile(twin, devices)
            break
        except (_DoesNotFit, InputError):  # InputError: the batch no longer splits over the mesh
            if config.global_batch_size % (2 * parts):
                return None
            parts *= 2
    return _cost(compiled, twin, program, len(devices)).times(parts)


def mosaic_kernels(hlo_text: str) -> collections.Counter[str]:
    """How many times each Mosaic kernel (by its name, e.g. "splash_mha_fwd_segmented_residuals")
    is called in a compiled program's HLO text."""
    return collections.Counter(_MOSAIC_CALL.findall(hlo_text))


def splash_kernel_flops(kernels: collections.Counter[str], rows: float, seq_length: int,
                        hidden_size: int) -> tuple[float, tuple[str, ...]]:
    """(FLOPs, names of the other kernels) of the Mosaic `kernels` of a program whose calls
    each take `rows` rows of `seq_length` tokens and all heads (heads * head_dim = hidden_size).
    """
    per_matmul = 2.0 * seq_length * seq_length * hidden_size * rows
    # Without a dq kernel (splash's fused backward) the dkv kernel computes dQ too.
    fused_dq = not any(name.startswith("splash_mha_dq") for name in kernels)
    flops, unknown = 0.0, []
    for name, calls in kernels.items():
        kind = next((kind for kind in _SPLASH_MATMULS if name.startswith(kind)), None)
        if kind is None:
            unknown.append(name)
            continue
        matmuls = _SPLASH_MATMULS[kind] + (kind == "splash_mha_dkv" and fused_dq)
        flops += calls * matmuls * per_matmul
    return flops, tuple(sorted(unknown))


def _cost(compiled, run: Run, program: step_lib.Program, num_devices: int) -> _Cost:
    """The cost per chip of `run`'s compiled train step (loop-free) from XLA's cost analysis,
    with the splash kernels' FLOPs, which it leaves out, counted from the program's calls."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops, seconds = cost.get("flops"), cost.get("optimal_seconds")
    # Each chip's kernel calls take its share of the rows and heads, together 1/num_devices.
    rows = run.config.global_batch_size / num_devices
    kernel_flops, unknown = splash_kernel_flops(mosaic_kernels(compiled.as_text()), rows,
                                                max(program.abstract_batches), run.model.hidden_size)
    return _Cost(float(flops) if flops and flops > 0 else None, seconds if seconds and seconds > 0 else None,
                 kernel_flops, unknown)


def compile_for_topology(run: Run, topology: str) -> CompileReport:
    """Compiles `run`'s train step for `topology` (N of them in one program with
    `steps_per_execution` N, as the loop runs them) and reports per-chip memory, and FLOPs and
    time per step.

    Memory comes from the real program; FLOPs and the time estimate from a loop-free twin
    when the real program has loops (see `_loop_free_cost`).
    """
    devices = topology_devices(topology)
    config = run.config
    try:
        program, batch, compiled = _compile(run, devices)
    except _DoesNotFit as error:
        raise InputError(f"the config does not fit {topology}: {error}") from None
    memory = compiled.memory_analysis()
    if run.model.scan_layers or config.grad_accum_steps > 1 or config.steps_per_execution > 1:
        cost = _loop_free_cost(run, devices) or _Cost(None, None, 0.0, ())
    else:
        cost = _cost(compiled, run, program, len(devices))
    kind = devices[0].device_kind
    model_flops = config.global_batch_size * run.task.flops_per_example(run.model) / len(devices)
    total = (memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
             + memory.temp_size_in_bytes + memory.generated_code_size_in_bytes)
    return CompileReport(
        topology=topology, device_kind=kind, num_devices=len(devices), mesh_shape=dict(program.mesh.shape),
        params_bytes=_bytes_per_device(program.abstract_state.params),
        optimizer_bytes=_bytes_per_device(program.abstract_state.opt_state),
        batch_bytes=_bytes_per_device(batch),
        temporaries_bytes=memory.temp_size_in_bytes,
        code_bytes=memory.generated_code_size_in_bytes,
        total_bytes=total, hbm_bytes=devices_lib.hbm_bytes(kind),
        compiler_flops=cost.flops, model_flops=model_flops, step_seconds=cost.seconds,
        peak_flops=devices_lib.peak_flops(kind, config.peak_flops_per_device),
        kernel_flops=cost.kernel_flops, unknown_kernels=cost.unknown_kernels,
        steps_per_execution=config.steps_per_execution,
    )
