"""From this process's rows of a batch to global arrays on the mesh, and back to the host.

Each task makes its own batches (see `train.task.TaskData`); the trainer only places them.
"""

from __future__ import annotations

import jax
import numpy as np


def global_batch(local: dict[str, np.ndarray], abstract: dict[str, jax.ShapeDtypeStruct],
                 leading: int = 1) -> dict[str, jax.Array]:
    """Assembles every process's rows into global arrays placed as `abstract` (the program's
    abstract batch) says; a field of another width (a shorter length bucket) keeps the sizes of
    the `leading` axes (the batch axis, or the stack and batch axes) and the sharding."""
    return {name: jax.make_array_from_process_local_data(
                spec.sharding, np.asarray(local[name], spec.dtype),
                spec.shape[:leading] + np.shape(local[name])[leading:])
            for name, spec in abstract.items()}


def global_batches(locals_: list[dict[str, np.ndarray]],
                   abstract: dict[str, jax.ShapeDtypeStruct]) -> dict[str, jax.Array]:
    """Several batches of one width as one stack of global batches (`Program.train_steps`'s
    argument), placed as `abstract` (`Program.abstract_batches_of`) says."""
    stacked = {name: np.stack([local[name] for local in locals_]) for name in abstract}
    return global_batch(stacked, abstract, leading=2)


def to_host(arrays: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    """Whole global arrays as numpy on every process (each process holds only its rows)."""
    if jax.process_count() == 1:
        return jax.device_get(arrays)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(arrays, tiled=True)


def concatenate(batches: list[np.ndarray]) -> np.ndarray:
    """Outputs of several batches along the batch axis; per-token outputs of batches padded to
    different lengths are padded with zeros to the longest."""
    widest = np.max([b.shape for b in batches], axis=0)
    return np.concatenate([np.pad(b, [(0, 0)] + [(0, w - n) for w, n in zip(widest[1:], b.shape[1:])])
                           for b in batches])
