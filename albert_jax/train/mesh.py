"""The device mesh (data, fsdp, tensor), multi-host start-up, and the batch's place on the mesh.

Within a slice the mesh is data x fsdp x tensor. On a multi-slice pod the data axis also spans
the slices (`mesh.dcn_data`), so the only traffic over the slow network between slices is the
data-parallel gradient reduction; the axis names stay the same and so do the rules.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh, NamedSharding

from albert_jax.errors import InputError
from albert_jax.model.sharding import Rule, logical_to_mesh

log = logging.getLogger(__name__)

MESH_AXES = ("data", "fsdp", "tensor")


# -- multi-host start-up ------------------------------------------------------------------------


def parse_address(text: str) -> str:
    """HOST:PORT as given; ValueError saying what is expected otherwise."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, e.g. 10.0.0.2:8476, got {text!r}")
    return text


def parse_count(text: str, minimum: int) -> int:
    """An integer of at least `minimum`; ValueError saying what is wrong otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"not an integer: {text!r}") from None
    if value < minimum:
        raise ValueError(f"must be at least {minimum}, got {value}")
    return value


def _from_environment(name: str, parse, *args):
    text = os.environ.get(name)
    if not text:
        return None
    try:
        return parse(text, *args)
    except ValueError as error:
        raise InputError(f"environment variable {name}: {error}") from None


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
    """Joins this process to the others of a multi-host run; must run before JAX is used.

    Arguments (or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) name the cluster
    explicitly. Without them JAX looks for a cluster it knows (TPU pods, SLURM, Open MPI, ...);
    when it finds none, this is a single-process run.
    """
    if coordinator_address is None:
        coordinator_address = _from_environment("JAX_COORDINATOR_ADDRESS", parse_address)
    if num_processes is None:
        num_processes = _from_environment("JAX_NUM_PROCESSES", parse_count, 1)
    if process_id is None:
        process_id = _from_environment("JAX_PROCESS_ID", parse_count, 0)
    explicit = (coordinator_address, num_processes, process_id)
    if any(value is not None for value in explicit):
        if any(value is None for value in explicit):
            raise InputError("a multi-process run needs all of --coordinator-address, "
                             "--num-processes and --process-id (or their JAX_* variables)")
        if process_id >= num_processes:
            raise InputError(f"process id {process_id} is not below the number of processes "
                             f"{num_processes}: the processes are numbered 0 to {num_processes - 1}")
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
        return
    try:
        jax.distributed.initialize()
    except ValueError as error:
        # Raised before any connection is tried, when no known cluster environment is present.
        log.debug("no cluster environment detected (%s): running as a single process", error)
    except RuntimeError as error:
        # A caller that used JAX already (e.g. the command run from Python) runs in its process.
        if "must be called before" not in str(error):
            raise
        log.debug("JAX is already running in this process: not joining a cluster")


# -- the mesh ------------------------------------------------------------------------------------


def all_devices() -> list[jax.Device]:
    """Every device of the run. A backend that the user's JAX_PLATFORMS names and that cannot
    start here (no plugin for it, no such chip) is bad input, not a JAX traceback."""
    try:
        return jax.devices()
    except Exception as error:
        platforms = jax.config.jax_platforms
        if not platforms:
            raise
        text = str(error).strip()
        reason = text.splitlines()[0] if text else "no backend started"
        raise InputError(f"JAX_PLATFORMS={platforms!r} names a backend JAX cannot start here ({reason}); "
                         "install JAX's plugin for it ('jax[cuda12]' for NVIDIA GPUs, 'jax[tpu]' for "
                         "TPUs), or unset JAX_PLATFORMS to let JAX choose") from error


def make_mesh(data: int, fsdp: int, tensor: int, dcn_data: int = -1,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh over `devices` (default: all) with axes data, fsdp, tensor.

    One of data/fsdp/tensor may be -1: it takes the devices of a slice the others leave. The
    axes are `Auto`, so the model's sharding constraints apply inside jit.
    """
    devices = list(all_devices() if devices is None else devices)
    num_slices = len({getattr(d, "slice_index", 0) for d in devices})
    dcn_data = num_slices if dcn_data == -1 else dcn_data
    if dcn_data != num_slices:
        raise InputError(f"mesh.dcn_data={dcn_data}, but the devices form {num_slices} slice(s)")
    per_slice = len(devices) // num_slices
    shape = _fill((data, fsdp, tensor), per_slice, len(devices), num_slices)
    axis_types = (AxisType.Auto,) * len(MESH_AXES)
    if num_slices == 1:
        return jax.make_mesh(shape, MESH_AXES, axis_types=axis_types, devices=devices)
    array = mesh_utils.create_hybrid_device_mesh(shape, (num_slices, 1, 1), devices)
    return Mesh(array, MESH_AXES, axis_types=axis_types)


def _fill(shape: tuple[int, ...], per_slice: int, total: int, num_slices: int) -> tuple[int, ...]:
    described = " x ".join(f"{name}={size}" for name, size in zip(MESH_AXES, shape))
    if shape.count(-1) > 1 or any(size == 0 or size < -1 for size in shape):
        raise InputError(f"mesh {described}: give positive sizes, at most one of them -1")
    known = math.prod(size for size in shape if size != -1)
    if -1 in shape:
        if per_slice % known:
            raise InputError(f"mesh {described}: {known} does not divide the {per_slice} devices "
                             "of a slice")
        shape = tuple(per_slice // known if size == -1 else size for size in shape)
    if math.prod(shape) != per_slice:
        where = f"{per_slice} devices per slice" if num_slices > 1 else f"{total} devices"
        raise InputError(f"mesh {described} has {math.prod(shape)} devices, but there are {where}; "
                         "set --config.mesh.* so that the product matches (one may be -1)")
    return shape


# -- the batch on the mesh -------------------------------------------------------------------------


def batch_sharding(mesh: Mesh, rules: Sequence[Rule], ndim: int) -> NamedSharding:
    """Where an input of rank `ndim` lives: its first (batch) axis split as the rules say."""
    spec = logical_to_mesh(("batch",) + (None,) * (ndim - 1), rules)
    return NamedSharding(mesh, spec)


def data_parallel_size(mesh: Mesh, rules: Sequence[Rule]) -> int:
    """How many ways the batch is split: the product of the mesh axes the batch rule names."""
    axes = batch_sharding(mesh, rules, 1).spec[0]
    axes = (axes,) if isinstance(axes, str) else tuple(axes or ())
    return math.prod(mesh.shape[a] for a in axes)


def check_batch(global_batch_size: int, grad_accum_steps: int, mesh: Mesh, rules: Sequence[Rule]) -> None:
    """The batch must split evenly over the data-parallel devices, in every microbatch."""
    size = data_parallel_size(mesh, rules)
    axes = " x ".join(f"{name}={mesh.shape[name]}" for name in MESH_AXES)
    if global_batch_size % (size * grad_accum_steps):
        accum = f" x grad_accum_steps {grad_accum_steps}" if grad_accum_steps > 1 else ""
        raise InputError(f"global_batch_size {global_batch_size} is not divisible by the "
                         f"data-parallel size {size} (mesh {axes}){accum}")
    if global_batch_size % jax.process_count():
        raise InputError(f"global_batch_size {global_batch_size} is not divisible by the "
                         f"{jax.process_count()} processes")


def process_rows(sharding: NamedSharding, global_batch_size: int) -> tuple[int, int]:
    """The rows [start, stop) of the global batch that this process's devices hold.

    `jax.make_array_from_process_local_data` takes exactly these rows from each process.
    """
    rows = sharding.addressable_devices_indices_map((global_batch_size,)).values()
    starts = {r[0].start or 0 for r in rows}
    stops = {global_batch_size if r[0].stop is None else r[0].stop for r in rows}
    start, stop = min(starts), max(stops)
    covered = np.zeros(global_batch_size, bool)
    for r in rows:
        covered[r[0]] = True
    if not covered[start:stop].all():
        raise InputError("this process's devices hold a non-contiguous part of the batch; "
                         "order the mesh so that each process owns one block of the data axes")
    return start, stop
