"""Pretraining as a task of the trainer: MLM at the masked positions plus sentence-order
prediction, on the built-in corpus, a prepared dataset, or synthetic batches.

Sources (`data.source`):
- "builtin": the built-in corpus; its tokenizer and prepared documents are made on first use
  and cached (`data.builtin_dataset`).
- "synthetic": random tokens (`data.synthetic`), for benchmarks and the multi-device tests.
- any other value: the directory of a dataset made by `albert-jax data prepare`, read with the
  tokenizer at `data.tokenizer`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import grain
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from etils.epath import Path
from flax import nnx

from albert_jax.data import pipeline
from albert_jax.data.builtin_dataset import builtin_dataset
from albert_jax.data.documents import EVAL_SPLIT, SPLITS, TRAIN_SPLIT, load_documents
from albert_jax.data.pretraining import BATCH_DTYPE, PretrainingDataConfig, Vocab, example_shapes
from albert_jax.data.synthetic import synthetic_iterator
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig, AlbertForPreTraining
from albert_jax.train import config as config_lib
from albert_jax.train import metrics as metrics_lib
from albert_jax.train.task import Batch, FieldSpec, Sums

SUM_KEYS = ("mlm_nll", "mlm_correct", "mlm_count", "sop_nll", "sop_correct", "examples", "tokens", "slots")


def _sop_weights(batch: Batch) -> jax.Array:
    """1 per example: packed rows weight their entries (0 for unused ones), a padded row is one."""
    if "sentence_order_weights" in batch:
        return batch["sentence_order_weights"].astype(jnp.float32)
    return jnp.ones(batch["sentence_order_label"].shape, jnp.float32)


def pretraining_sums(model: nnx.Module, batch: Batch, dropout_key: jax.Array | None) -> Sums:
    """MLM at the masked positions (weighted by masked_lm_weights) and SOP, as sums.

    Packed batches (`data.packing`) give the same sums as the same examples padded one per row.
    """
    if "segment_ids" in batch:
        rows = dict(segment_ids=batch["segment_ids"], position_ids=batch["position_ids"],
                    cls_positions=batch["cls_positions"])
    else:
        rows = dict(attention_mask=batch["attention_mask"])
    out = model(batch["input_ids"], token_type_ids=batch["token_type_ids"],
                masked_lm_positions=batch["masked_lm_positions"], rngs=dropout_key, **rows)
    weights = batch["masked_lm_weights"].astype(jnp.float32)
    ids = batch["masked_lm_ids"]
    mlm_nll = optax.softmax_cross_entropy_with_integer_labels(out.prediction_logits, ids)
    mlm_hit = jnp.argmax(out.prediction_logits, axis=-1) == ids
    labels, sop_weights = batch["sentence_order_label"], _sop_weights(batch)
    sop_nll = optax.softmax_cross_entropy_with_integer_labels(out.sop_logits, labels)
    sop_hit = jnp.argmax(out.sop_logits, axis=-1) == labels
    return {
        "mlm_nll": jnp.sum(mlm_nll * weights),
        "mlm_correct": jnp.sum(mlm_hit * weights),
        "mlm_count": jnp.sum(weights),
        "sop_nll": jnp.sum(sop_nll * sop_weights),
        "sop_correct": jnp.sum(sop_hit * sop_weights),
        "examples": jnp.sum(sop_weights),
        "tokens": jnp.sum(batch["attention_mask"] > 0, dtype=jnp.float32),
        "slots": jnp.asarray(batch["attention_mask"].size, jnp.float32),
    }


def baseline_sums(batch: Batch, vocab_size: int) -> Sums:
    """What the trivial predictors score, as sums: how often each piece is a masked target (a
    model that always predicts the most frequent one is right that often) and how many examples
    have SOP label 1 (always predicting the majority label is right for its share)."""
    weights = batch["masked_lm_weights"].astype(jnp.float32)
    target_counts = jnp.zeros(vocab_size, jnp.float32).at[batch["masked_lm_ids"]].add(weights)
    return {"mlm_target_counts": target_counts,
            "sop_label_1": jnp.sum(batch["sentence_order_label"] * _sop_weights(batch))}


def metrics_from_sums(sums: dict[str, Any]) -> dict[str, Any]:
    """loss = mean MLM loss over all masked tokens + mean SOP loss over all examples; and how
    many examples the batch held (more than its rows when packed) and the share of its token
    slots that are padding."""
    count = jnp.maximum(sums["mlm_count"], 1.0)
    mlm_loss, sop_loss = sums["mlm_nll"] / count, sums["sop_nll"] / sums["examples"]
    return {
        "loss": mlm_loss + sop_loss,
        "mlm_loss": mlm_loss,
        "mlm_accuracy": sums["mlm_correct"] / count,
        "sop_loss": sop_loss,
        "sop_accuracy": sums["sop_correct"] / sums["examples"],
        "examples": sums["examples"],
        "padding_fraction": 1.0 - sums["tokens"] / jnp.maximum(sums["slots"], 1.0),
    }


@dataclasses.dataclass(frozen=True)
class PretrainingTask:
    """MLM + SOP over `data` (the original create_pretraining_data.py options)."""

    data: PretrainingDataConfig
    source: str  # "builtin", "synthetic" or a prepared dataset directory
    tokenizer: str  # the prepared dataset's SentencePiece .model ("" otherwise)
    num_workers: int
    shuffle_window: int
    eval_steps: int

    model_class = AlbertForPreTraining
    sum_keys = SUM_KEYS
    best_metric = None

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> PretrainingTask:
        """`data.*` with the top-level sequence length and seed (one override changes both the
        model inputs and the examples)."""
        fields = {f.name for f in dataclasses.fields(PretrainingDataConfig)}
        options = {k: v for k, v in config.data.items() if k in fields}
        data = PretrainingDataConfig(max_seq_length=config.seq_length, seed=config.seed, **options)
        if config.data.num_workers < 0:
            raise InputError(f"data.num_workers must not be negative, got {config.data.num_workers}")
        if config.data.shuffle_window < 1:
            raise InputError(f"data.shuffle_window must be at least 1 (1: no shuffling), got "
                             f"{config.data.shuffle_window}")
        return cls(data, config.data.source, config.data.tokenizer, config.data.num_workers,
                   config.data.shuffle_window, config.eval_steps)

    @property
    def lengths(self) -> tuple[int, ...]:
        return (self.data.max_seq_length,)

    def model_config(self, config: ml_collections.ConfigDict) -> AlbertConfig:
        model = config_lib.model_config(config)
        if self.data.max_seq_length > model.max_position_embeddings:
            raise InputError(f"seq_length {self.data.max_seq_length} exceeds the model's "
                             f"max_position_embeddings {model.max_position_embeddings}")
        return model

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        return {name: (shape, BATCH_DTYPE) for name, shape in example_shapes(self.data).items()}

    def sums(self, model: nnx.Module, batch: Batch, dropout_key: jax.Array | None) -> Sums:
        return pretraining_sums(model, batch, dropout_key)

    def normalisers(self, batch: Batch) -> dict[str, jax.Array]:
        return {"mlm_count": jnp.maximum(jnp.sum(batch["masked_lm_weights"].astype(jnp.float32)), 1.0),
                "examples": jnp.maximum(jnp.sum(_sop_weights(batch)), 1.0)}

    def loss(self, sums: Sums, normalisers: dict[str, jax.Array]) -> jax.Array:
        return sums["mlm_nll"] / normalisers["mlm_count"] + sums["sop_nll"] / normalisers["examples"]

    def metrics(self, sums: Sums) -> dict[str, jax.Array]:
        return metrics_from_sums(sums)

    def eval_outputs(self, model: nnx.Module, batch: Batch) -> tuple[Sums, dict[str, jax.Array]]:
        sums = pretraining_sums(model, batch, None)
        return {**sums, **baseline_sums(batch, model.config.vocab_size)}, {}

    def evaluate(self, sums: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        """The metrics, and beside each accuracy (`<name>_baseline`) what the trivial predictor
        scores on the same held-out examples: the most frequent target piece for MLM (the best
        constant prediction in hindsight), the majority label for SOP."""
        metrics = {k: float(v) for k, v in metrics_from_sums(sums).items()}
        examples, label_1 = float(sums["examples"]), float(sums["sop_label_1"])
        metrics["mlm_accuracy_baseline"] = float(np.max(sums["mlm_target_counts"])) / max(
            float(sums["mlm_count"]), 1.0)
        metrics["sop_accuracy_baseline"] = max(label_1, examples - label_1) / max(examples, 1.0)
        return metrics

    def write_predictions(self, outputs: dict[str, np.ndarray], workdir: str) -> None:
        raise NotImplementedError("pretraining keeps no best checkpoint")

    def flops_per_example(self, model: AlbertConfig) -> float:
        return metrics_lib.train_flops_per_example(model, self.data.max_seq_length,
                                                   self.data.num_prediction_slots)

    def open_data(self, model: AlbertConfig, global_batch_size: int) -> PretrainingData:
        return PretrainingData(self, model, global_batch_size)


class PretrainingData:
    """The task's source, opened once; this process's train and held-out batch iterators.

    Raises InputError at once (before any training) when the tokenizer disagrees with the
    model's vocabulary or the dataset was tokenized by another tokenizer.
    """

    def __init__(self, task: PretrainingTask, model: AlbertConfig, global_batch_size: int):
        self.task, self.model, self.global_batch_size = task, model, global_batch_size
        self.tokenizer_path: Path | None = None
        self.has_eval = task.eval_steps > 0
        if task.source == "synthetic":
            # Checked here, not with the config: `albert-jax compile` may lower packed batches.
            if task.data.packing:
                raise InputError("data.packing needs real examples to pack: data.source 'synthetic' "
                                 "makes padded rows only; use 'builtin' or a prepared dataset")
            return
        if task.source == "builtin":
            tokenizer_path, dataset_dir = builtin_dataset(model.vocab_size)
        else:
            if not task.tokenizer:
                raise InputError("data.source names a prepared dataset: set --config.data.tokenizer "
                                 "to the .model file it was tokenized with")
            tokenizer_path, dataset_dir = Path(task.tokenizer), Path(task.source)
        tokenizer = Tokenizer.load(tokenizer_path)
        if tokenizer.vocab_size != model.vocab_size:
            raise InputError(f"tokenizer {str(tokenizer_path)!r} has {tokenizer.vocab_size} pieces but "
                             f"the model's vocab_size is {model.vocab_size}; set "
                             f"--config.model.vocab_size={tokenizer.vocab_size} or use another tokenizer")
        self.tokenizer_path = tokenizer_path
        self.vocab = Vocab.from_tokenizer(tokenizer)
        self.documents = {split: load_documents(dataset_dir, split, tokenizer) for split in SPLITS}
        if len(self.documents[TRAIN_SPLIT]) == 0:
            raise InputError(f"the prepared dataset {str(dataset_dir)!r} has no training documents")
        self.has_eval = self.has_eval and len(self.documents[EVAL_SPLIT]) > 0

    def _iterator(self, split: str, rows: tuple[int, int]) -> grain.DatasetIterator:
        if self.task.source == "synthetic":
            return synthetic_iterator(self.task.data, self.model.vocab_size, SPLITS.index(split),
                                      self.global_batch_size, rows)
        train = split == TRAIN_SPLIT
        return pipeline.make_pretraining_iterator(
            self.documents[split], self.task.data, self.vocab, batch_size=rows[1] - rows[0],
            shard_index=jax.process_index(), shard_count=jax.process_count(),
            worker_count=self.task.num_workers if train else 0,
            shuffle_window=self.task.shuffle_window)

    def train_iterator(self, rows: tuple[int, int]) -> grain.DatasetIterator:
        return self._iterator(TRAIN_SPLIT, rows)

    def eval_batches(self, rows: tuple[int, int]) -> Iterator[dict[str, np.ndarray]]:
        """The first `eval_steps` held-out batches: the same ones at every evaluation."""
        iterator = self._iterator(EVAL_SPLIT, rows)
        try:
            for _ in range(self.task.eval_steps):
                yield next(iterator)
        finally:
            iterator.close()
