"""Token tagging (named entities and the like) from CoNLL-style files or tfds `conll2003`
(`AlbertForTokenClassification`).

    albert-jax finetune --config configs/finetune/tagging.py --workdir runs/ner \\
        --config.init_from=path/to/albert-base-v2 \\
        --config.data.train_file=train.txt --config.data.dev_file=dev.txt

Each word is tokenized on its own; its first sub-token carries the word's tag and the others
are not scored. Words cut off by the maximum length are predicted "O". The dev metric is entity
precision/recall/F1 as seqeval computes it (`data.scheme`: "" for seqeval's default, which reads
IOB1 and IOB2 alike, or "IOB1"/"IOB2" for its strict mode). With `data.packing` several
sentences share a row (`tasks.finetune`); the loss stays the mean over scored tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig, AlbertForTokenClassification
from albert_jax.tasks import finetune
from albert_jax.tasks import metrics as metrics_lib
from albert_jax.tasks.examples import TaggedExample
from albert_jax.tasks.finetune import EXAMPLE_INDEX, DevSet, Encoded, FinetuneTask
from albert_jax.tasks.losses import token_classification_sums
from albert_jax.tasks.readers import ConllFilesReader, ConllTfdsReader
from albert_jax.train.task import Batch, FieldSpec, Sums

OUTSIDE = "O"


def tagging_config() -> ml_collections.ConfigDict:
    """The ALBERT paper has no tagging task; this is BERT's recipe for CoNLL-2003 NER (Devlin
    et al. 2019: learning rate 5e-5, batch 32, a few epochs), at length 128."""
    config = finetune.finetune_config()
    config.task = "tagging"
    finetune.paper_recipe(config, learning_rate=5e-5, batch_size=32, train_steps=2000,
                          warmup_steps=200, albert_dropout=0.0)
    config.data.train_file = ""  # CoNLL-style files; without them tfds conll2003
    config.data.dev_file = ""
    config.data.tfds_data_dir = ""
    config.data.scheme = ""  # "", "IOB1" or "IOB2" (see the module docstring)
    return config


@dataclasses.dataclass(frozen=True, eq=False)
class TokenTaggingTask(FinetuneTask):
    """One tag per word of each `TaggedExample`."""

    model_class = AlbertForTokenClassification
    default_length = 128
    packable = True

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        return self.packed_spec({
            "input_ids": ((length,), np.int32),
            "attention_mask": ((length,), np.int32),
            "token_type_ids": ((length,), np.int32),
            "labels": ((length,), np.int32),
            "word_starts": ((length,), np.int32),  # 1 at each word's first sub-token
            EXAMPLE_INDEX: ((), np.int32),
        }, length)

    def weights(self, batch: Batch) -> jax.Array:
        return batch["word_starts"].astype(jnp.float32) * finetune.real_rows_mask(batch)[:, None]

    def head_sums(self, logits: jax.Array, batch: Batch) -> Sums:
        return token_classification_sums(logits, batch["labels"], self.weights(batch))

    def predictions(self, logits: jax.Array) -> dict[str, jax.Array]:
        return {"tags": jnp.argmax(logits, -1).astype(jnp.int32)}

    def eval_outputs(self, model, batch: Batch):
        sums, outputs = super().eval_outputs(model, batch)
        outputs = {**outputs, "word_starts": batch["word_starts"]}
        if "segment_ids" in batch:  # packed rows: each example's tokens on a row of their own
            outputs.update({name: finetune.per_example_tokens(outputs[name], batch)
                            for name in ("tags", "word_starts")})
        return sums, outputs

    def _word_tags(self, examples: Sequence[TaggedExample], rows: dict[str, np.ndarray]) -> list[list[str]]:
        tagged = []
        for example, tags, starts in zip(examples, rows["tags"], rows["word_starts"]):
            words = [self.labels[t] for t in tags[starts.astype(bool)]]
            tagged.append(words + [OUTSIDE] * (len(example.words) - len(words)))
        return tagged

    def evaluate(self, sums: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        examples = [example for example, _ in self.dev_examples()]
        predicted = self._word_tags(examples, finetune.real_rows(outputs))
        results = {"loss": self.eval_loss(sums),
                   "token_accuracy": float(sums["correct"] / max(float(sums["count"]), 1.0))}
        return {**results, **self.score_dev_sets(lambda e: list(e.tags), predicted)}

    def prediction_records(self, examples: Sequence[TaggedExample], rows: dict[str, np.ndarray]) -> list[dict]:
        """Per sentence its id, its words and their predicted tags."""
        return [{"guid": example.guid, "words": list(example.words), "tags": tags}
                for example, tags in zip(examples, self._word_tags(examples, rows))]

    def gold(self, example: TaggedExample) -> list[str]:
        return list(example.tags or ())

    def encode(self, tokenizer, examples: Sequence[TaggedExample]) -> Encoded:
        fields: dict[str, list[np.ndarray]] = {name: [] for name in
                                               ("input_ids", "attention_mask", "token_type_ids",
                                                "labels", "word_starts")}
        room = self.max_length - 2  # [CLS] ... [SEP]
        for example in examples:
            ids, labels, starts = [tokenizer.cls_token_id], [0], [0]
            for index, word in enumerate(example.words):
                pieces = tokenizer.encode(word, add_special_tokens=False) or [tokenizer.unk_token_id]
                if len(ids) - 1 + len(pieces) > room:
                    break
                tag = self.labels.index(example.tags[index]) if example.tags else 0
                ids += pieces
                labels += [tag] + [0] * (len(pieces) - 1)
                starts += [1] + [0] * (len(pieces) - 1)
            ids, labels, starts = ids + [tokenizer.sep_token_id], labels + [0], starts + [0]
            fields["input_ids"].append(np.asarray(ids, np.int32))
            fields["attention_mask"].append(np.ones(len(ids), np.int32))
            fields["token_type_ids"].append(np.zeros(len(ids), np.int32))
            fields["labels"].append(np.asarray(labels, np.int32))
            fields["word_starts"].append(np.asarray(starts, np.int32))
        pad = {name: 0 for name in fields} | {"input_ids": tokenizer.pad_token_id}
        return Encoded(tokens=fields, values={}, pad=pad)


def make_task(config: ml_collections.ConfigDict) -> TokenTaggingTask:
    data = config.data
    if data.scheme not in ("", *metrics_lib.ENTITY_SCHEMES):
        raise InputError(f"data.scheme {data.scheme!r}: use '' or one of "
                         f"{', '.join(metrics_lib.ENTITY_SCHEMES)}")
    if data.train_file:
        reader = ConllFilesReader(train_file=data.train_file, dev_file=data.dev_file or None)
        dev = [DevSet(tuple(reader.read("dev")))] if data.dev_file else []
    else:
        reader = ConllTfdsReader(data_dir=data.tfds_data_dir or None)
        dev = [DevSet(tuple(reader.read("dev")))]
    scheme = data.scheme or None

    def entities(labels, predictions) -> dict[str, float]:
        return metrics_lib.entity_scores(labels, predictions, scheme=scheme)

    return TokenTaggingTask.create(
        config, name="tagging", labels=reader.labels, train=reader.read("train"), dev=dev,
        metrics_fn=entities, best_metric="f1")


def for_prediction(config: ml_collections.ConfigDict, model: AlbertConfig, tokenizer_path: Path):
    """The task of a finished run, and a reader of CoNLL-style files (tags optional)."""
    labels = tuple(model.id2label.values())
    task = TokenTaggingTask.for_prediction(config, model, labels, tokenizer_path)
    return task, lambda path: ConllFilesReader(test_file=path, labels=labels).read("test")
