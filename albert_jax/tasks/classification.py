"""Sequence classification and regression of one text or a pair (GLUE, any local table).

The pooled [CLS] output goes through dropout and a dense layer (`AlbertForSequenceClassification`);
classification is trained with cross-entropy, regression (one output) with squared error, as the
original `run_classifier.py` and transformers do. With `data.packing` several examples share a
row, each pooled at its own [CLS] (`tasks.finetune`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np

from albert_jax.errors import InputError
from albert_jax.model import AlbertForSequenceClassification
from albert_jax.tasks import finetune
from albert_jax.tasks.examples import TextExample
from albert_jax.tasks.finetune import EXAMPLE_INDEX, Encoded, FinetuneTask
from albert_jax.tasks.losses import classification_sums, regression_sums
from albert_jax.train.task import Batch, FieldSpec, Sums


@dataclasses.dataclass(frozen=True, eq=False)
class TextClassificationTask(FinetuneTask):
    """Classification (`labels`: class names in class-id order) or regression (`labels` None)
    of `TextExample`s."""

    model_class = AlbertForSequenceClassification
    packable = True

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        return self.packed_spec({
            "input_ids": ((length,), np.int32),
            "attention_mask": ((length,), np.int32),
            "token_type_ids": ((length,), np.int32),
            "labels": ((), np.float32 if self.regression else np.int32),
            EXAMPLE_INDEX: ((), np.int32),
        }, length)

    def head_sums(self, logits: jax.Array, batch: Batch) -> Sums:
        # Packed rows have one output per example slot: [rows, slots, ...] -> [examples, ...].
        logits, labels = logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1)
        weights = self.weights(batch).reshape(-1)
        if self.regression:
            return regression_sums(logits, labels, weights)
        return classification_sums(logits, labels, weights)

    def _gold(self, example: TextExample) -> float | int:
        return float(example.label) if self.regression else self.labels.index(example.label)

    def evaluate(self, sums: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        logits = finetune.real_rows(outputs)["logits"]
        predicted = logits[:, 0] if self.regression else logits.argmax(-1)
        return {"loss": self.eval_loss(sums), **self.score_dev_sets(self._gold, predicted)}

    def prediction_records(self, examples: Sequence[TextExample], rows: dict[str, np.ndarray]) -> list[dict]:
        """Per example its id and the predicted label with the class probabilities, or the
        score."""
        records = []
        for example, logits in zip(examples, rows["logits"]):
            record = {"guid": example.guid}
            if self.regression:
                record["score"] = float(logits[0])
            else:
                probabilities = np.exp(logits - logits.max())
                probabilities /= probabilities.sum()
                record["label"] = self.labels[int(logits.argmax())]
                record["probabilities"] = {name: float(p) for name, p in zip(self.labels, probabilities)}
            records.append(record)
        return records

    def gold(self, example: TextExample) -> str | float | None:
        return example.label

    def encode(self, tokenizer, examples: Sequence[TextExample]) -> Encoded:
        """Token ids of each example, a pair truncated longest first, one token at a time, as
        the original."""
        pairs = [e.text_b for e in examples]
        has_pairs = any(text is not None for text in pairs)
        if has_pairs and not all(text is not None for text in pairs):
            raise InputError(f"{self.name}: some examples have a second text and others do not")
        encoded = tokenizer([e.text_a for e in examples], pairs if has_pairs else None,
                            truncation=True, max_length=self.max_length)
        labels = np.array([0 if e.label is None else self._gold(e) for e in examples],
                          np.float32 if self.regression else np.int32)
        return Encoded(
            tokens={key: [np.asarray(ids, np.int32) for ids in encoded[key]]
                    for key in ("input_ids", "attention_mask", "token_type_ids")},
            values={"labels": labels},
            pad={"input_ids": tokenizer.pad_token_id, "attention_mask": 0, "token_type_ids": 0})
