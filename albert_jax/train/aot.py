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

import jax
import ml_collections

from albert_jax.errors import InputError
from albert_jax.train import config as config_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import metrics as metrics_lib
from albert_jax.train import step as step_lib

GiB = 1024 ** 3

# High-bandwidth memory of one JAX device, by device_kind prefix (the longest match wins).
HBM_BYTES = {
    "TPU v2": 8 * GiB,
    "TPU v3": 16 * GiB,
    "TPU v4": 32 * GiB,
    "TPU v5 lite": 16 * GiB,
    "TPU v5": 95 * GiB,
    "TPU v6 lite": 32 * GiB,
}


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
    # JAX drives a v4 chip's two TensorCores as one device ("megacore"); the description must too.
    options = {"chip_config_name": "megacore"} if name.startswith("v4:") else {}
    try:
        return list(topologies.get_topology_desc(topology_name=name, platform="tpu", **options).devices)
    except Exception as error:  # libtpu reports unknown names with assorted exception types
        raise InputError(f"unknown TPU topology {name!r} ({str(error).splitlines()[0]}); "
                         "use a name like v4:2x2x2, v5e:4x4, v5p:4x4x4 or v6e:8x8") from None


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
    compiler_flops: float  # per chip, as XLA counts them (remat included)
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
            f"{self.compiler_flops / 1e12:.2f} TFLOP as compiled",
        ]
        if self.step_seconds:
            lines.append(f"  estimated step time   {self.step_seconds * 1e3:9.1f} ms (compiler's estimate)")
        if self.mfu is not None:
            lines.append(f"  estimated MFU         {self.mfu:9.1%}")
        return "\n".join(lines)


def _bytes_per_device(tree) -> int:
    """Bytes one device holds of an abstract tree whose leaves carry shardings (the largest shard)."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shard = leaf.sharding.shard_shape(leaf.shape)
        total += math.prod(shard) * leaf.dtype.itemsize
    return total


def _longest_prefix(table: dict, kind: str):
    matches = [k for k in table if kind.startswith(k)]
    return table[max(matches, key=len)] if matches else None


class _DoesNotFit(Exception):
    """XLA found that the program's buffers exceed the device memory."""


def _compile(config: ml_collections.ConfigDict, devices: list[jax.Device]):
    mesh = mesh_lib.make_mesh(**config.mesh, devices=devices)
    program = step_lib.build_program(config, mesh)
    try:
        return program, program.train_step.lower(*program.train_args()).compile()
    except Exception as error:  # XLA reports an over-full HBM as a compile error
        if "RESOURCE_EXHAUSTED" in str(error):
            raise _DoesNotFit(str(error).splitlines()[0]) from None
        raise


def _loop_free_cost(config: ml_collections.ConfigDict, devices: list[jax.Device]) -> tuple[float, float | None]:
    """(FLOPs, seconds) per chip of one train step, from a loop-free twin of the step.

    XLA's cost analysis does not see into loops, so a scanned program's FLOPs and time
    estimates are meaningless. The twin unrolls the layers and takes one microbatch, halved
    further while it does not fit (unrolling keeps more alive); its cost is scaled back up.
    """
    twin = ml_collections.ConfigDict(config.to_dict())
    twin.model.scan_layers = False
    twin.grad_accum_steps = 1
    parts = config.grad_accum_steps
    while True:
        twin.global_batch_size = config.global_batch_size // parts
        try:
            compiled = _compile(twin, devices)[1]
            break
        except (_DoesNotFit, InputError):  # InputError: the batch no longer splits over the mesh
            if config.global_batch_size % (2 * parts):
                return 0.0, None
            parts *= 2
    flops, seconds = _cost(compiled)
    return parts * flops, parts * seconds if seconds else None


def _cost(compiled) -> tuple[float, float | None]:
    """(FLOPs, estimated seconds) per chip from XLA's cost analysis; seconds None if unknown."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    seconds = cost.get("optimal_seconds")
    return float(cost.get("flops", 0.0)), seconds if seconds and seconds > 0 else None


def compile_for_topology(config: ml_collections.ConfigDict, topology: str) -> CompileReport:
    """Compiles `config`'s train step for `topology` and reports per-chip memory, FLOPs and time.

    Memory comes from the real program; FLOPs and the time estimate from a loop-free twin
    when the real program has loops (see `_loop_free_cost`).
    """
    devices = topology_devices(topology)
    config_lib.validate(config)
    try:
        program, compiled = _compile(config, devices)
    except _DoesNotFit as error:
        raise InputError(f"the config does not fit {topology}: {error}") from None
    memory = compiled.memory_analysis()
    if config_lib.model_config(config).scan_layers or config.grad_accum_steps > 1:
        flops, seconds = _loop_free_cost(config, devices)
    else:
        flops, seconds = _cost(compiled)
    kind = devices[0].device_kind
    model_config = config_lib.model_config(config)
    model_flops = config.global_batch_size * metrics_lib.train_flops_per_example(
        model_config, config.seq_length, config_lib.data_config(config).num_prediction_slots) / len(devices)
    total = (memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
             + memory.temp_size_in_bytes + memory.generated_code_size_in_bytes)
    return CompileReport(
        topology=topology, device_kind=kind, num_devices=len(devices), mesh_shape=dict(program.mesh.shape),
        params_bytes=_bytes_per_device(program.abstract_state.params),
        optimizer_bytes=_bytes_per_device(program.abstract_state.opt_state),
        batch_bytes=_bytes_per_device(program.abstract_batch),
        temporaries_bytes=memory.temp_size_in_bytes,
        code_bytes=memory.generated_code_size_in_bytes,
        total_bytes=total, hbm_bytes=_longest_prefix(HBM_BYTES, kind),
        compiler_flops=flops, model_flops=model_flops,
        step_seconds=seconds,
        peak_flops=metrics_lib.peak_flops(kind, config.peak_flops_per_device),
    )
