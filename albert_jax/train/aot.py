"""Ahead-of-time compilation of the real train step for a TPU slice, on a machine without TPUs.

libtpu (`pip install 'albert_jax[tpu]'`) carries the TPU compiler; `jax.experimental.topologies`
describes a slice's devices without owning them. The step is built exactly as `albert-jax
pretrain` builds it (`step.build_program`), lowered from abstract inputs and compiled, and the
compiler's own memory and cost analyses are reported per chip, so a pod config can be checked
before anyone pays for the pod.
"""

from __future__ import annotations

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
    """What one chip of the slice would hold and do in one train step."""

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
    step_seconds: float | None  # the compiler's estimate
    peak_flops: float | None

    @property
    def headroom(self) -> bool:
        """XLA placed the program (it refuses one that does not fit); this says whether the sum
        of its buffer sizes also stays under HBM, i.e. whether some memory is left to spare."""
        return self.hbm_bytes is None or self.total_bytes <= self.hbm_bytes

    @property
    def mfu(self) -> float | None:
        if not self.step_seconds or not self.peak_flops:
            return None
        return self.model_flops / self.step_seconds / self.peak_flops

    def format(self) -> str:
        hbm = f" of {self.hbm_bytes / GiB:.1f} GiB HBM" if self.hbm_bytes else ""
        mesh = " x ".join(f"{k}={v}" for k, v in self.mesh_shape.items())
        lines = [
            f"topology {self.topology}: {self.num_devices} x {self.device_kind}, mesh {mesh}",
            "per chip:",
            f"  parameters            {self.params_bytes / GiB:9.3f} GiB",
            f"  optimizer state       {self.optimizer_bytes / GiB:9.3f} GiB",
            f"  batch                 {self.batch_bytes / GiB:9.3f} GiB",
            f"  activations and temps {self.temporaries_bytes / GiB:9.3f} GiB",
            f"  program code          {self.code_bytes / GiB:9.3f} GiB",
            f"  total                 {self.total_bytes / GiB:9.3f} GiB{hbm}"
            f" ({'fits' if self.headroom else 'compiled, but the buffers sum above HBM: no headroom'})",
            f"  FLOPs per step        {self.model_flops / 1e12:9.2f} TFLOP model, "
            + (f"{self.compiler_flops / 1e12:.2f} TFLOP as compiled" if self.compiler_flops
               else "unknown as compiled"),
        ]
        lines.append(f"  estimated step time   {self.step_seconds * 1e3:9.1f} ms (compiler's estimate)"
                     if self.step_seconds else "  estimated step time     unknown")
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
    mesh = mesh_lib.make_mesh(**run.config.mesh, devices=devices)
    program = step_lib.build_program(run, mesh)
    try:
        return program, program.train_step.lower(*program.train_args()).compile()
    except Exception as error:  # XLA reports an over-full HBM as a compile error
        if "RESOURCE_EXHAUSTED" in str(error):
            raise _DoesNotFit(str(error).splitlines()[0]) from None
        raise


def _loop_free_cost(run: Run, devices: list[jax.Device]) -> tuple[float | None, float | None]:
    """(FLOPs, seconds) per chip of one train step, from a loop-free twin of the step; None
    where unknown.

    XLA's cost analysis does not see into loops, so a scanned program's FLOPs and time
    estimates are meaningless. The twin unrolls the layers and takes one microbatch, halved
    further while it does not fit (unrolling keeps more alive); its cost is scaled back up.
    """
    config = run.config
    twin_config = ml_collections.ConfigDict(config.to_dict())
    twin_config.grad_accum_steps = 1
    twin = run.replace(config=twin_config, model=run.model.replace(scan_layers=False))
    parts = config.grad_accum_steps
    while True:
        twin_config.global_batch_size = config.global_batch_size // parts
        try:
            compiled = _compile(twin, devices)[1]
            break
        except (_DoesNotFit, InputError):  # InputError: the batch no longer splits over the mesh
            if config.global_batch_size % (2 * parts):
                return None, None
            parts *= 2
    flops, seconds = _cost(compiled)
    return (parts * flops if flops else None), (parts * seconds if seconds else None)


def _cost(compiled) -> tuple[float | None, float | None]:
    """(FLOPs, estimated seconds) per chip from XLA's cost analysis; None where unknown."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops, seconds = cost.get("flops"), cost.get("optimal_seconds")
    return (float(flops) if flops and flops > 0 else None), (seconds if seconds and seconds > 0 else None)


def compile_for_topology(run: Run, topology: str) -> CompileReport:
    """Compiles `run`'s train step for `topology` and reports per-chip memory, FLOPs and time.

    Memory comes from the real program; FLOPs and the time estimate from a loop-free twin
    when the real program has loops (see `_loop_free_cost`).
    """
    devices = topology_devices(topology)
    config = run.config
    try:
        program, compiled = _compile(run, devices)
    except _DoesNotFit as error:
        raise InputError(f"the config does not fit {topology}: {error}") from None
    memory = compiled.memory_analysis()
    if run.model.scan_layers or config.grad_accum_steps > 1:
        flops, seconds = _loop_free_cost(run, devices)
    else:
        flops, seconds = _cost(compiled)
    kind = devices[0].device_kind
    model_flops = config.global_batch_size * run.task.flops_per_example(run.model) / len(devices)
    total = (memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
             + memory.temp_size_in_bytes + memory.generated_code_size_in_bytes)
    return CompileReport(
        topology=topology, device_kind=kind, num_devices=len(devices), mesh_shape=dict(program.mesh.shape),
        params_bytes=_bytes_per_device(program.abstract_state.params),
        optimizer_bytes=_bytes_per_device(program.abstract_state.opt_state),
        batch_bytes=_bytes_per_device(program.abstract_batch),
        temporaries_bytes=memory.temp_size_in_bytes,
        code_bytes=memory.generated_code_size_in_bytes,
        total_bytes=total, hbm_bytes=devices_lib.hbm_bytes(kind),
        compiler_flops=flops, model_flops=model_flops,
        step_seconds=seconds,
        peak_flops=devices_lib.peak_flops(kind, config.peak_flops_per_device),
    )
