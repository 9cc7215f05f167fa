"""The seam between the trainer and what it trains: a `Task`.

The trainer (mesh, shardings, jitted steps, the loop, checkpoints, resume, SIGTERM, metrics)
is one copy for every kind of run. A task supplies the rest: which model class it trains, its
batch contract, its loss as sums, its metrics, and its data. Pretraining (`tasks.pretraining`)
is one task; each fine-tuning task is another.

Losses are sums over examples (or tokens) plus whole-batch normalisers computed before the batch
is split into microbatches, so microbatch gradients and eval batches add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import grain
import jax
import ml_collections
import numpy as np
from etils.epath import Path
from flax import nnx

from albert_jax.model.config import AlbertConfig

Batch = dict[str, jax.Array]
Sums = dict[str, jax.Array]
FieldSpec = tuple[tuple[int, ...], np.dtype]  # (shape of one example's field, dtype)


class TaskData(Protocol):
    """A task's data, opened (and checked) before anything is written to the workdir."""

    #: Whether there is a held-out set to evaluate on.
    has_eval: bool
    #: The SentencePiece model of the data (copied into the workdir), if there is one.
    tokenizer_path: Path | None

    def train_iterator(self, rows: tuple[int, int]) -> grain.DatasetIterator:
        """Endless and checkpointable: this process's rows [start, stop) of each global batch,
        every row of one batch padded to the same one of the task's `lengths`."""

    def eval_batches(self, rows: tuple[int, int]) -> Iterable[dict[str, np.ndarray]]:
        """The held-out set, the same batches every time, as this process's rows; empty when
        there is no held-out set."""


class Task(Protocol):
    """What one kind of run supplies to the trainer (see the module docstring)."""

    #: The model class trained (e.g. AlbertForPreTraining); its parameters are the state.
    model_class: type[nnx.Module]
    #: The names of `sums`' outputs.
    sum_keys: tuple[str, ...]
    #: The eval metric that decides the best checkpoint, and whether higher is better; None
    #: keeps no best checkpoint.
    best_metric: tuple[str, bool] | None
    #: The sequence lengths batches are padded to (length buckets), ascending; the step is
    #: compiled once for each.
    lengths: tuple[int, ...]

    def model_config(self, config: ml_collections.ConfigDict) -> AlbertConfig:
        """The model this task trains, from the config (its `model.*`, or the model it starts
        from) adapted to the task (e.g. its labels); checks that the task's sequences fit it."""

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        """The batch contract at one of `lengths`: each field's shape in one example, and its
        dtype."""

    def sums(self, model: nnx.Module, batch: Batch, dropout_key: jax.Array | None) -> Sums:
        """Loss terms and counts of `batch`, as sums over its examples (dropout off when the key
        is None)."""

    def normalisers(self, batch: Batch) -> dict[str, jax.Array]:
        """Denominators of the loss over the whole batch, taken before microbatching."""

    def loss(self, sums: Sums, normalisers: dict[str, jax.Array]) -> jax.Array:
        """The training objective of (a microbatch of) a batch; adds up over microbatches."""

    def metrics(self, sums: Sums) -> dict[str, jax.Array]:
        """Training metrics (`loss` first) from sums added over a batch; an `examples` metric
        (examples in the batch) makes the logged examples/s count examples, not rows."""

    def eval_outputs(self, model: nnx.Module, batch: Batch) -> tuple[Sums, dict[str, jax.Array]]:
        """Without dropout: sums that add up over eval batches, and per-example outputs
        (predictions) that `evaluate` reads; either may be empty."""

    def evaluate(self, sums: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        """Held-out metrics (without the `eval_` prefix) from the summed sums and the outputs of
        every held-out example in order."""

    def write_predictions(self, outputs: dict[str, np.ndarray], workdir: str) -> None:
        """Writes the held-out predictions of the best checkpoint so far (process 0 only)."""

    def flops_per_example(self, model: AlbertConfig) -> float:
        """Model FLOPs of one training example at the full length (forward and backward)."""

    def open_data(self, model: AlbertConfig, global_batch_size: int) -> TaskData:
        """Opens and checks the data; raises InputError before any training."""
