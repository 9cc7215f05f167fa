"""What every fine-tuning task shares: the recipe, the model it starts from, its tokenizer, and
the path from tokenized examples to batches padded to a few length buckets.

The recipe is the original's (google-research/ALBERT `optimization.py` with `--optimizer=adamw`):
AdamW without bias correction, epsilon 1e-6, weight decay 0.01 except LayerNorm and biases,
gradients clipped to norm 1.0, learning rate warmed up linearly then decayed linearly to 0 over
all steps. Each task's config sets the paper's learning rate, batch size, steps, warmup, length
and dropout (Lan et al. 2019, appendix A.4).

Batches: the training order is a seeded shuffle of all examples, reshuffled every pass, cut into
global batches. Every process knows every example's length, so all processes pad a batch to the
same bucket (the smallest of `length_buckets` that holds its longest example) and then take their
own rows. The trainer compiles its step once per bucket.

Packed batches (`data.packing`, for the tasks whose `packable` is True): the same order is packed
first fit into rows of the maximum length, up to `data.max_examples_per_row` examples each
(`data.packing.pack_examples`); every process packs the same stream and takes its own rows of each global
batch. `global_batch_size` then counts rows, so a step trains on a varying number of examples,
and the loss is still the mean over those examples (per example, not per row). Dev sets and
prediction inputs are packed in order, and every output carries its example's index, so results
come back one per example in the original order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils.epath import Path
from flax import nnx
from ml_collections import config_dict

from albert_jax import storage
from albert_jax.data import packing
from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig
from albert_jax.tasks.losses import counts, mean_loss
from albert_jax.train import config as config_lib
from albert_jax.train import data as data_lib
from albert_jax.train import metrics as metrics_lib
from albert_jax.train.task import Batch, FieldSpec, Sums

log = logging.getLogger("albert_jax")

# Every batch carries the index of each row's example (-1 for the rows that pad the last eval
# batch), so eval outputs map back to examples and padding rows count zero.
EXAMPLE_INDEX = "example_index"
# The smallest length bucket; buckets double up to the task's maximum length.
_SMALLEST_BUCKET = 16
# Rows the packer fills at once (at least; a larger global batch opens that many): more leave
# less padding, and each holds only `max_length` tokens of every field.
_MIN_PACKING_BINS = 64
# The training examples the start-of-run padding report packs (the first of the first pass).
_REPORTED_EXAMPLES = 20_000


def finetune_config() -> ml_collections.ConfigDict:
    """Every key a fine-tuning run reads, with the original's recipe; a task's config sets the
    task and the paper's numbers for it."""
    c = config_lib.default_config()
    c.optimizer = "adamw"
    c.weight_decay = 0.01
    c.adam_epsilon = 1e-6
    c.grad_clip_norm = 1.0
    # The task's default maximum length, lowered to the model's max_position_embeddings (with a
    # warning) when that is shorter; a length given explicitly must fit the model.
    c.seq_length = config_dict.placeholder(int)
    # The original evaluated every saved checkpoint (every 100 steps) and kept the best.
    c.eval_every_steps = 100
    c.checkpoint_every_steps = 500
    c.keep_checkpoints = 1
    c.log_every_steps = 50
    # The model starts from `init_from` (a Hugging Face directory, an original TF release, a
    # pretraining workdir, or save_pretrained output); its config.json gives the architecture,
    # and `model.*` keys set here change it (dropout). Without init_from, `model.preset` at random.
    c.model.classifier_dropout_prob = 0.1
    c.model.hidden_dropout_prob = 0.0
    c.model.attention_probs_dropout_prob = 0.0
    # The SentencePiece model; default: the one beside init_from.
    c.tokenizer = ""
    # "0,1,2,3,4": one run per seed in WORKDIR/seed_<n>, and their median (the paper's protocol).
    c.seeds = ""
    # Where the task's data is; each task's config documents the keys it reads.
    c.data = ml_collections.ConfigDict()
    # Several examples per row of seq_length instead of one padded example (classification,
    # regression, tagging; see the module docstring): global_batch_size then counts rows.
    c.data.packing = False
    # Fine-tuning examples are short (a GLUE sentence is a few dozen tokens): at length 512 a
    # row holds over 20 of them, so the bound is higher than pretraining's 8 (README: Fine-tuning).
    c.data.max_examples_per_row = 32
    return c


def paper_recipe(config: ml_collections.ConfigDict, *, learning_rate: float, batch_size: int,
                 train_steps: int, warmup_steps: int, albert_dropout: float) -> None:
    """Sets one row of the paper's fine-tuning table (classifier dropout is 0.1 throughout)."""
    config.learning_rate = learning_rate
    config.global_batch_size = batch_size
    config.num_train_steps = train_steps
    config.warmup_steps = warmup_steps
    config.model.hidden_dropout_prob = albert_dropout
    config.model.attention_probs_dropout_prob = albert_dropout


# -- the starting model and its tokenizer --------------------------------------------------------


def starting_model(config: ml_collections.ConfigDict) -> AlbertConfig:
    """The architecture of `init_from` (or `model.preset`), with the config's `model.*` keys."""
    explicit = {k: v for k, v in config.model.items() if k != "preset" and v is not None}
    if not config.init_from:
        log.warning("\n%s\nNO init_from: fine-tuning starts from RANDOM weights (%s). Set "
                    "--config.init_from=PATH to a pretrained ALBERT.\n%s", "!" * 78,
                    config.model.preset, "!" * 78)
        return AlbertConfig.preset(config.model.preset, **explicit)
    path = Path(config.init_from)
    for name in ("config.json", "albert_config.json"):
        if (path / name).is_file():
            return AlbertConfig.from_json_file(path / name).replace(**explicit)
    raise InputError(f"init_from {str(path)!r} holds no config.json (Hugging Face, albert_jax) or "
                     "albert_config.json (original release)")


def tokenizer_file(config: ml_collections.ConfigDict) -> Path:
    """The SentencePiece .model file: `tokenizer`, else the one beside `init_from`."""
    if not (config.tokenizer or config.init_from):
        raise InputError("no tokenizer: set --config.tokenizer to a SentencePiece .model file "
                         "(or --config.init_from to a model directory that holds one)")
    source = Path(config.tokenizer or config.init_from)
    if source.is_file():
        return source
    for name in ("spiece.model", "30k-clean.model"):
        if (source / name).is_file():
            return source / name
    where = "tokenizer" if config.tokenizer else "init_from"
    raise InputError(f"{where} {str(source)!r} holds no spiece.model (Hugging Face, albert_jax) or "
                     "30k-clean.model (original release); set --config.tokenizer to the .model file")


def max_length(config: ml_collections.ConfigDict, model: AlbertConfig, default: int) -> int:
    """The sequence length: `seq_length` if given (it must fit the model), else the task's
    default lowered to the model's positions."""
    if config.seq_length is not None:
        if config.seq_length > model.max_position_embeddings:
            raise InputError(f"seq_length {config.seq_length} exceeds the model's "
                             f"max_position_embeddings {model.max_position_embeddings}")
        return config.seq_length
    if default > model.max_position_embeddings:
        log.warning("the task's default length %d exceeds the model's max_position_embeddings %d; "
                    "using %d", default, model.max_position_embeddings, model.max_position_embeddings)
        return model.max_position_embeddings
    return default


def length_buckets(maximum: int) -> tuple[int, ...]:
    """Widths batches are padded to: doubling from 16 (multiples of 8 suit every accelerator),
    and the maximum itself."""
    buckets, width = [], _SMALLEST_BUCKET
    while width < maximum:
        buckets.append(width)
        width *= 2
    return (*buckets, maximum)


# -- tokenized examples and their batches --------------------------------------------------------


@dataclasses.dataclass
class Encoded:
    """Tokenized examples: token fields of varying length (the last axis; padded per batch) and
    fields of one fixed shape per example.

    `tokens[name][i]` is example i's field, e.g. `input_ids` [length] or, for multiple choice,
    [choices, length]; `pad[name]` is its padding value. `values[name]` is [N, ...].
    """

    tokens: dict[str, list[np.ndarray]]
    values: dict[str, np.ndarray]
    pad: dict[str, int]

    def __len__(self) -> int:
        return len(self.tokens["input_ids"])

    def lengths(self) -> np.ndarray:
        return np.array([ids.shape[-1] for ids in self.tokens["input_ids"]], np.int64)

    def batch(self, indices: np.ndarray, width: int) -> dict[str, np.ndarray]:
        """The examples at `indices` (-1: a padding row), every token field padded to `width`."""
        real = np.maximum(indices, 0)
        out = {EXAMPLE_INDEX: indices.astype(np.int32)}
        for name, fields in self.tokens.items():
            shape = (len(indices), *fields[0].shape[:-1], width)
            array = np.full(shape, self.pad[name], fields[0].dtype)
            for row, (index, keep) in enumerate(zip(real, indices >= 0)):
                if keep:
                    field = fields[index]
                    array[row, ..., :field.shape[-1]] = field
            out[name] = array
        for name, values in self.values.items():
            column = values[real].copy()
            column[indices < 0] = 0
            out[name] = column
        return out


def bucket_of(length: int, buckets: Sequence[int]) -> int:
    return next(b for b in buckets if b >= length)


class _GlobalBatch:
    """Indices of one global batch -> this process's rows, padded to the batch's bucket."""

    def __init__(self, encoded: Encoded, buckets: Sequence[int], rows: tuple[int, int]):
        self.encoded, self.buckets, self.rows = encoded, tuple(buckets), rows
        self.lengths = encoded.lengths()

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        real = indices[indices >= 0]
        width = bucket_of(int(self.lengths[real].max()) if len(real) else 1, self.buckets)
        return self.encoded.batch(indices[self.rows[0]:self.rows[1]], width)


class _Unpadded:
    """An example's index -> the example unpadded, as `packing.pack_examples` takes it: its
    token fields (without attention_mask, which a packed row derives) and its values, each
    shaped (1,). (A class, not a bound method: grain names a transform by its repr, and an
    `Encoded`'s repr prints every example.)"""

    def __init__(self, encoded: Encoded):
        self.encoded = encoded

    def __call__(self, index: int) -> dict[str, np.ndarray]:
        tokens, values = self.encoded.tokens, self.encoded.values
        out = {name: fields[index] for name, fields in tokens.items() if name != "attention_mask"}
        out.update({name: column[index].reshape(1) for name, column in values.items()})
        out[EXAMPLE_INDEX] = np.array([index], np.int32)
        return out


class _Rows:
    """A global batch -> this process's rows [start, stop)."""

    def __init__(self, rows: tuple[int, int]):
        self.rows = rows

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value[self.rows[0]:self.rows[1]] for name, value in batch.items()}


class FinetuneData:
    """A task's tokenized train and dev examples as the trainer's `TaskData`; packed rows of up
    to `max_examples_per_row` examples when that is positive (0: one padded example per row)."""

    def __init__(self, train: Encoded, dev: Encoded | None, *, buckets: Sequence[int],
                 global_batch_size: int, seed: int, tokenizer_path: Path, max_examples_per_row: int = 0):
        if len(train) == 0:
            raise InputError("the training set has no examples")
        self.train, self.dev, self.buckets = train, dev, tuple(buckets)
        self.global_batch_size, self.seed = global_batch_size, seed
        self.tokenizer_path = tokenizer_path
        self.has_eval = dev is not None and len(dev) > 0
        self.max_examples_per_row = max_examples_per_row

    def _order(self) -> grain.MapDataset:
        return grain.MapDataset.range(len(self.train)).shuffle(seed=self.seed).repeat()

    def train_iterator(self, rows: tuple[int, int]) -> grain.DatasetIterator:
        if self.max_examples_per_row:
            packed = self._packed(self.train, self._order().to_iter_dataset())
            return iter(packed.batch(self.global_batch_size, drop_remainder=True).map(_Rows(rows)))
        order = (self._order().batch(self.global_batch_size, drop_remainder=True)
                 .map(_GlobalBatch(self.train, self.buckets, rows)))
        return iter(order.to_iter_dataset())

    def eval_batches(self, rows: tuple[int, int]) -> Iterator[dict[str, np.ndarray]]:
        """The dev set in order, the last batch completed with padding rows (index -1)."""
        return self.batches_of(self.dev, rows)

    def batches_of(self, encoded: Encoded, rows: tuple[int, int]) -> Iterator[dict[str, np.ndarray]]:
        """`encoded` in order, in global batches, the last completed with padding rows."""
        if self.max_examples_per_row:
            yield from self._packed_batches(encoded, rows)
            return
        size = self.global_batch_size
        count = -(-len(encoded) // size) * size
        indices = np.where(np.arange(count) < len(encoded), np.arange(count), -1)
        make = _GlobalBatch(encoded, self.buckets, rows)
        for start in range(0, count, size):
            yield make(indices[start:start + size])

    def _packed(self, encoded: Encoded, indices: grain.IterDataset) -> grain.IterDataset:
        """Packed rows of the examples at `indices`, in that order."""
        tokens = {name: pad for name, pad in encoded.pad.items() if name != "attention_mask"}
        values = dict.fromkeys(encoded.values, 0) | {EXAMPLE_INDEX: -1}
        return packing.pack_examples(
            indices.map(_Unpadded(encoded)), length=self.buckets[-1], max_examples=self.max_examples_per_row,
            token_padding=tokens, example_padding=values,
            num_packing_bins=max(self.global_batch_size, _MIN_PACKING_BINS))

    def _packed_batches(self, encoded: Encoded, rows: tuple[int, int]) -> Iterator[dict[str, np.ndarray]]:
        """`encoded` packed in order into global batches, the last completed with empty rows
        (no tokens, every example index -1)."""
        packed = list(self._packed(encoded, grain.MapDataset.range(len(encoded)).to_iter_dataset()))
        size = self.global_batch_size
        empty = {name: np.full_like(value, -1 if name == EXAMPLE_INDEX else encoded.pad.get(name, 0))
                 for name, value in packed[0].items()}
        packed += [empty] * (-len(packed) % size)
        take = _Rows(rows)
        for start in range(0, len(packed), size):
            yield take({name: np.stack([row[name] for row in packed[start:start + size]])
                        for name in empty})

    def padding_report(self) -> dict[str, float]:
        """Padding of (up to) the first `_REPORTED_EXAMPLES` training examples of the first pass:
        one example per row padded to its global batch's length bucket, as an unpacked run pads
        them, and packed as this run packs them."""
        first_pass = self._order()
        order = np.asarray([first_pass[i] for i in range(min(len(self.train), _REPORTED_EXAMPLES))])
        lengths = self.train.lengths()
        real, rows, examples = 0, 0, 0
        for row in self._packed(self.train, grain.MapDataset.source(order).to_iter_dataset()):
            real, rows = real + int(row["attention_mask"].sum()), rows + 1
            examples += int(np.sum(row[EXAMPLE_INDEX] >= 0))
        size = self.global_batch_size
        buckets = length_buckets(self.buckets[-1])  # an unpacked run's
        widths = [bucket_of(int(lengths[order[i:i + size]].max()), buckets) * len(order[i:i + size])
                  for i in range(0, len(order), size)]
        return {"examples": examples, "padded": 1 - lengths[order].sum() / sum(widths),
                "packed": 1 - real / (rows * self.buckets[-1]), "packed_rows": rows,
                "examples_per_row": examples / rows}


def real_rows_mask(batch: Batch) -> jax.Array:
    """[batch] 1.0 for the rows that hold an example (packed: at least one), 0.0 for padding rows."""
    index = batch[EXAMPLE_INDEX]
    return jnp.any(index.reshape(index.shape[0], -1) >= 0, axis=1).astype(jnp.float32)


def per_example_tokens(values: jax.Array, batch: Batch) -> jax.Array:
    """A per-token output of packed rows [batch, length] as one row per example slot
    [batch, max_examples_per_row, length]: example k's tokens from its first, zeros after its
    last (and everywhere for an unused slot), as its own unpacked row would be padded."""
    length = values.shape[1]
    slots = batch["cls_positions"].shape[1]
    where = batch["cls_positions"][:, :, None] + jnp.arange(length)[None, None, :]
    inside = where < length
    where = jnp.minimum(where, length - 1)
    gathered = jnp.take_along_axis(values[:, None, :], where, axis=2)
    segment = jnp.take_along_axis(batch["segment_ids"][:, None, :], where, axis=2)
    own = inside & (segment == jnp.arange(1, slots + 1)[None, :, None])
    return jnp.where(own, gathered, 0)


def real_rows(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Eval outputs without the padding rows (or unused example slots of packed rows), in
    example order."""
    keep = outputs[EXAMPLE_INDEX] >= 0
    order = np.argsort(outputs[EXAMPLE_INDEX][keep], kind="stable")
    return {k: np.asarray(v)[keep][order] for k, v in outputs.items()}


def write_jsonl(path: str | os.PathLike, records: Sequence[dict[str, Any]]) -> None:
    """Writes records as JSON lines, replacing `path` only once complete."""
    storage.write_atomically(path, "".join(json.dumps(record) + "\n" for record in records))


# -- the task ------------------------------------------------------------------------------------

# (labels, predictions) -> metrics, as the functions of `tasks.metrics` compute them.
Metrics = Callable[[Any, Any], dict[str, float]]
# The loss terms' sums and counts (`tasks.losses`), then the padding statistics and the
# examples trained on (which vary per step with packing).
SUM_KEYS = ("nll", "correct", "squared_error", "count", "tokens", "slots", "examples")


@dataclasses.dataclass(frozen=True)
class DevSet:
    """One dev set: its examples and the suffix of its metric names (MNLI mismatched: "_mm")."""

    examples: tuple[Any, ...]
    suffix: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class FinetuneTask:
    """What every fine-tuning task does the same way, as the trainer's `Task`.

    A task type (classification, multiple choice, tagging) adds its model class and batch
    contract (`example_spec`), its head's logits and loss sums (`head_sums`), which rows or
    tokens count (`weights`), how examples become token ids (`encode`), and its evaluation.
    """

    name: str  # for messages, e.g. "glue/sst2"
    labels: tuple[str, ...] | None  # class names in class-id order; None for regression
    train: tuple[Any, ...]
    dev: tuple[DevSet, ...]
    metrics_fn: Metrics
    best_metric: tuple[str, bool]  # (dev metric, higher is better)
    model: AlbertConfig
    max_length: int
    seed: int
    tokenizer_path: Path
    #: Examples per packed row (`data.packing`); 0: one example per row, padded.
    max_examples_per_row: int = 0

    sum_keys = SUM_KEYS
    #: The paper's maximum length for the task (lowered to the model's positions if longer).
    default_length = 512
    #: Whether `data.packing` applies: the task's model reads each example at its [CLS] or per
    #: token (`packed_spec`), so several examples can share a row.
    packable = False

    @classmethod
    def create(cls, config: ml_collections.ConfigDict, *, name: str, labels: tuple[str, ...] | None,
               train: Sequence[Any], dev: Sequence[DevSet], metrics_fn: Metrics, best_metric: str,
               **fields: Any) -> FinetuneTask:
        """The task with the model it starts from, given as many outputs as it has labels."""
        per_row = cls.examples_per_row(config, name)
        if not train:
            raise InputError(f"{name}: the training set has no examples")
        num_labels, label_names = cls.head_labels(labels)
        model = starting_model(config).replace(num_labels=num_labels, label_names=label_names)
        return cls(name, labels, tuple(train), tuple(dev), metrics_fn, (best_metric, True), model,
                   max_length(config, model, cls.default_length), config.seed, tokenizer_file(config),
                   max_examples_per_row=per_row, **fields)

    @classmethod
    def for_prediction(cls, config: ml_collections.ConfigDict, model: AlbertConfig,
                       labels: tuple[str, ...] | None, tokenizer_path: Path, **fields: Any) -> FinetuneTask:
        """The task of a finished run (its saved config and model), without its data."""
        return cls(config.task, labels, (), (), None, ("", True), model,
                   max_length(config, model, cls.default_length), config.seed, tokenizer_path,
                   max_examples_per_row=cls.examples_per_row(config, config.task), **fields)

    @classmethod
    def examples_per_row(cls, config: ml_collections.ConfigDict, name: str) -> int:
        """`data.max_examples_per_row` with `data.packing` (0 without); refuses packing for a
        task that is not `packable`. Runs saved before packing existed read as unpacked."""
        data = config.get("data") or {}
        if not data.get("packing", False):
            return 0
        if not cls.packable:
            raise InputError(f"data.packing: {name} keeps one example per row (packing serves sequence "
                             "classification, regression and tagging); set --config.data.packing=false")
        if data.max_examples_per_row < 1:
            raise InputError(f"data.max_examples_per_row must be positive, got {data.max_examples_per_row}")
        return data.max_examples_per_row

    @staticmethod
    def head_labels(labels: tuple[str, ...] | None) -> tuple[int, tuple[str, ...]]:
        """The head's number of outputs and their names: one per class, or one for regression."""
        return (1, ()) if labels is None else (len(labels), labels)

    @property
    def regression(self) -> bool:
        return self.labels is None

    @property
    def packed(self) -> bool:
        return self.max_examples_per_row > 0

    @property
    def lengths(self) -> tuple[int, ...]:
        # Packed rows are filled to the maximum length: one width, one compiled step.
        return (self.max_length,) if self.packed else length_buckets(self.max_length)

    def packed_spec(self, spec: dict[str, FieldSpec], length: int) -> dict[str, FieldSpec]:
        """The batch contract `spec` of one example per row as this task's rows: unchanged
        without packing; packed, the [length] fields hold a row's examples one after another,
        each per-example field (shape ()) gets one slot per example [max_examples_per_row], and
        segment_ids, position_ids [length] and cls_positions [max_examples_per_row] are added
        (see `packing.pack_examples`)."""
        if not self.packed:
            return spec
        slots = (self.max_examples_per_row,)
        out = {name: (slots if shape == () else shape, dtype) for name, (shape, dtype) in spec.items()}
        return out | {"segment_ids": ((length,), np.int32), "position_ids": ((length,), np.int32),
                      "cls_positions": (slots, np.int32)}

    def model_config(self, config: ml_collections.ConfigDict) -> AlbertConfig:
        return self.model

    # -- the loss ------------------------------------------------------------------------------

    def logits(self, model: nnx.Module, batch: Batch, dropout_key: jax.Array | None) -> jax.Array:
        if "segment_ids" in batch:  # packed rows: one output per example, at its [CLS]
            return model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                         position_ids=batch["position_ids"], segment_ids=batch["segment_ids"],
                         cls_positions=batch["cls_positions"], rngs=dropout_key).logits
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                     rngs=dropout_key).logits

    def weights(self, batch: Batch) -> jax.Array:
        """1 for what the loss counts (examples, or tokens), 0 for padding: [batch], or
        [batch, max_examples_per_row] for packed rows."""
        return (batch[EXAMPLE_INDEX] >= 0).astype(jnp.float32)

    def head_sums(self, logits: jax.Array, batch: Batch) -> Sums:
        raise NotImplementedError

    def _sums(self, logits: jax.Array, batch: Batch) -> Sums:
        sums = self.head_sums(logits, batch)
        rows = real_rows_mask(batch)
        mask = batch["attention_mask"].astype(jnp.float32)
        sums["tokens"] = jnp.sum(mask * rows.reshape(rows.shape + (1,) * (mask.ndim - 1)))
        sums["slots"] = jnp.sum(rows) * (mask.size // mask.shape[0])
        sums["examples"] = jnp.sum(batch[EXAMPLE_INDEX] >= 0, dtype=jnp.float32)
        return {k: sums.get(k, jnp.zeros((), jnp.float32)) for k in self.sum_keys}

    def sums(self, model: nnx.Module, batch: Batch, dropout_key: jax.Array | None) -> Sums:
        return self._sums(self.logits(model, batch, dropout_key), batch)

    def normalisers(self, batch: Batch) -> dict[str, jax.Array]:
        return counts(self.weights(batch))

    def _loss_sums(self, sums: Sums) -> Sums:
        term = "squared_error" if self.regression else "nll"
        return {term: sums[term], "count": sums["count"]}

    def loss(self, sums: Sums, normalisers: dict[str, jax.Array]) -> jax.Array:
        return mean_loss(self._loss_sums(sums), normalisers)

    def metrics(self, sums: Sums) -> dict[str, jax.Array]:
        out = {"loss": mean_loss(self._loss_sums(sums))}
        if not self.regression:
            out["accuracy"] = sums["correct"] / jnp.maximum(sums["count"], 1.0)
        # Share of the padded token slots that hold no token: what the length buckets (or the
        # packing) leave.
        out["padding_fraction"] = 1.0 - sums["tokens"] / jnp.maximum(sums["slots"], 1.0)
        if self.packed:  # global_batch_size counts rows: the loop's examples/s counts these
            out["examples"] = sums["examples"]
        return out

    # -- evaluation ----------------------------------------------------------------------------

    def eval_outputs(self, model: nnx.Module, batch: Batch) -> tuple[Sums, dict[str, jax.Array]]:
        logits = self.logits(model, batch, None)
        return self._sums(logits, batch), {**self.predictions(logits), EXAMPLE_INDEX: batch[EXAMPLE_INDEX]}

    def predictions(self, logits: jax.Array) -> dict[str, jax.Array]:
        """The per-example outputs evaluation and the prediction files read."""
        return {"logits": logits}

    def prediction_records(self, examples: Sequence[Any], rows: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """One JSON record per example from its outputs (`rows`, in example order)."""
        raise NotImplementedError

    def gold(self, example: Any) -> Any:
        """An example's answer as the prediction records write it."""
        raise NotImplementedError

    def write_predictions(self, outputs: dict[str, np.ndarray], workdir: str) -> None:
        """WORKDIR/dev_predictions.jsonl: the records of every dev example, with its dev set and
        its gold answer."""
        pairs = self.dev_examples()
        records = self.prediction_records([example for example, _ in pairs], real_rows(outputs))
        for record, (example, suffix) in zip(records, pairs):
            record.update(dev_set="dev" + suffix, gold=self.gold(example))
        write_jsonl(Path(workdir) / "dev_predictions.jsonl", records)

    def dev_examples(self) -> list[tuple[Any, str]]:
        """Every dev example with its dev set's suffix, in evaluation order."""
        return [(example, dev.suffix) for dev in self.dev for example in dev.examples]

    def eval_loss(self, sums: dict[str, np.ndarray]) -> float:
        return float(np.asarray(mean_loss(self._loss_sums(sums))))

    def score_dev_sets(self, gold: Callable[[Any], Any], predicted: Sequence[Any]) -> dict[str, float]:
        """`metrics_fn` over each dev set, its metric names with the set's suffix."""
        results, start = {}, 0
        for dev in self.dev:
            stop = start + len(dev.examples)
            labels = [gold(example) for example in dev.examples]
            for key, value in self.metrics_fn(labels, predicted[start:stop]).items():
                results[key + dev.suffix] = value
            start = stop
        if start != len(predicted):
            raise AssertionError(f"{len(predicted)} predictions for {start} dev examples")
        return results

    # -- data ----------------------------------------------------------------------------------

    def encode(self, tokenizer: Any, examples: Sequence[Any]) -> Encoded:
        raise NotImplementedError

    def open_data(self, model: AlbertConfig, global_batch_size: int) -> FinetuneData:
        from albert_jax import AlbertTokenizer

        tokenizer = AlbertTokenizer.from_pretrained(self.tokenizer_path)
        if tokenizer.vocab_size != model.vocab_size:
            raise InputError(f"tokenizer {str(self.tokenizer_path)!r} has {tokenizer.vocab_size} pieces "
                             f"but the model's vocab_size is {model.vocab_size}; use the tokenizer "
                             "the model was pretrained with")
        dev = [example for example, _ in self.dev_examples()]
        data = FinetuneData(self.encode(tokenizer, self.train),
                            self.encode(tokenizer, dev) if dev else None,
                            buckets=self.lengths, global_batch_size=global_batch_size,
                            seed=self.seed, tokenizer_path=self.tokenizer_path,
                            max_examples_per_row=self.max_examples_per_row)
        if self.packed and jax.process_index() == 0:
            report = data.padding_report()
            log.info("packing (data.packing): padding %.1f%% of the tokens one example per row (length "
                     "buckets), %.1f%% packed at length %d, %.2f examples per row over the first %d "
                     "training examples; a step of %d rows trains on about %.0f examples",
                     100 * report["padded"], 100 * report["packed"], self.max_length,
                     report["examples_per_row"], report["examples"], global_batch_size,
                     global_batch_size * report["examples_per_row"])
        return data

    def flops_per_example(self, model: AlbertConfig) -> float:
        return metrics_lib.train_flops_per_example(model, self.max_length, 0)


# -- runs, one per seed --------------------------------------------------------------------------


def parse_seeds(config: ml_collections.ConfigDict) -> list[int] | None:
    """The seeds of `seeds` ("0,1,2"), or None for one run with `seed`."""
    if not config.seeds:
        return None
    try:
        seeds = [int(part) for part in config.seeds.split(",")]
    except ValueError:
        raise InputError(f"seeds {config.seeds!r}: expected integers separated by commas, "
                         "e.g. --config.seeds=0,1,2,3,4") from None
    if len(set(seeds)) != len(seeds) or any(seed < 0 for seed in seeds):
        raise InputError(f"seeds {config.seeds!r}: give distinct non-negative integers")
    return seeds


def run_seeds(config: ml_collections.ConfigDict, workdir: str, seeds: list[int] | None) -> None:
    """One fine-tuning run in `workdir`, or one per seed in `workdir/seed_<n>` with every seed's
    results and their median in `workdir/eval_results.json` (the paper reports medians of 5)."""
    import jax

    from albert_jax import workdir as layout
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import loop

    run = resolve(config)
    if seeds is None:
        loop.train(run, workdir)
        return
    per_seed = {}
    for seed in seeds:
        seed_config = ml_collections.ConfigDict(config.to_dict())
        seed_config.seed = seed
        seed_dir = str(Path(workdir) / f"seed_{seed}")
        loop.train(run.replace(config=seed_config, task=dataclasses.replace(run.task, seed=seed)), seed_dir)
        per_seed[str(seed)] = json.loads((Path(seed_dir) / layout.RESULTS).read_text())
    if jax.process_index() == 0:
        _write_json(Path(workdir) / layout.RESULTS, seed_summary(per_seed))


def seed_summary(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every seed's results and, per metric, the median over seeds of the best checkpoints."""
    first = next(iter(per_seed.values()))
    return {
        "protocol": (f"median over seeds {', '.join(per_seed)} of each seed's best checkpoint "
                     "(the ALBERT paper's protocol: median of 5 runs); " + first["selection"]),
        "median": {name: float(np.median([r["best"][name] for r in per_seed.values()]))
                   for name in first["best"]},
        "median_final": {name: float(np.median([r["final"][name] for r in per_seed.values()]))
                         for name in first["final"]},
        "seeds": per_seed,
    }


def _write_json(path: str | os.PathLike, value: Any) -> None:
    storage.write_atomically(path, json.dumps(value, indent=2) + "\n")


# -- prediction with a finished run --------------------------------------------------------------

PREDICTION_FORMATS = ("jsonl", "tsv", "glue")


def predict(workdir: str, input_path: str, output_path: str, output_format: str = "jsonl") -> int:
    """Runs the best model of the fine-tuning run in `workdir` (else its newest checkpoint) over
    `input_path`, in the input layout of the run's task; writes one prediction per example:
    JSON lines, `guid<TAB>prediction`, or a GLUE submission (`index<TAB>prediction`).
    Returns the number of examples."""
    from albert_jax import AlbertTokenizer
    from albert_jax import workdir as layout
    from albert_jax.tasks.registry import prediction_task

    if output_format not in PREDICTION_FORMATS:
        raise InputError(f"unknown output format {output_format!r}; choose {', '.join(PREDICTION_FORMATS)}")
    saved = Path(workdir) / layout.TRAIN_CONFIG
    if not saved.is_file():
        raise InputError(f"{workdir!r} holds no fine-tuning run ({layout.TRAIN_CONFIG} is missing)")
    config = ml_collections.ConfigDict(json.loads(saved.read_text()))
    model_dir = Path(workdir) / layout.BEST
    if not (model_dir / layout.MODEL_CONFIG).is_file():
        model_dir = Path(workdir)
    model_config = AlbertConfig.from_json_file(model_dir / layout.MODEL_CONFIG)
    tokenizer_path = Path(workdir) / layout.TOKENIZER
    task, read = prediction_task(config, model_config, tokenizer_path)
    if output_format == "glue" and config.task != "glue":
        raise InputError("--format glue writes GLUE submissions; this run is not a GLUE task")
    examples = read(input_path)
    if not examples:
        raise InputError(f"{input_path}: no examples")
    tokenizer = AlbertTokenizer.from_pretrained(tokenizer_path)
    encoded = task.encode(tokenizer, examples)
    model = task.model_class.from_pretrained(model_dir)
    model.eval()
    # The outputs evaluation reads (with what the task needs beside the logits, e.g. word starts).
    forward = nnx.jit(lambda model, batch: task.eval_outputs(model, batch)[1])
    batches = FinetuneData(encoded, None, buckets=task.lengths, global_batch_size=config.global_batch_size,
                           seed=0, tokenizer_path=tokenizer_path,
                           max_examples_per_row=task.max_examples_per_row)
    outputs = [jax.device_get(forward(model, batch))
               for batch in batches.batches_of(encoded, (0, config.global_batch_size))]
    rows = real_rows({k: data_lib.concatenate([o[k] for o in outputs]) for k in outputs[0]})
    records = task.prediction_records(examples, rows)
    _write_predictions(records, output_path, output_format)
    return len(records)


def _prediction_text(record: dict[str, Any]) -> str:
    for key in ("label", "score", "answer"):
        if key in record and not (key == "label" and "answer" in record):
            return str(record[key])
    return " ".join(record["tags"])


def _write_predictions(records: list[dict[str, Any]], path: str, output_format: str) -> None:
    if output_format == "jsonl":
        write_jsonl(path, records)
        return
    header = "index\tprediction" if output_format == "glue" else "guid\tprediction"
    lines = [header]
    for record in records:
        guid = record["guid"].rsplit("-", 1)[-1] if output_format == "glue" else record["guid"]
        lines.append(f"{guid}\t{_prediction_text(record)}")
    storage.write_atomically(path, "\n".join(lines) + "\n")
