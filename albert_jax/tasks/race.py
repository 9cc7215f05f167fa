"""RACE: reading comprehension as multiple choice (`AlbertForMultipleChoice`).

    albert-jax finetune --config configs/finetune/race.py --workdir runs/race \\
        --config.init_from=path/to/albert-base-v2 --config.data_dir=path/to/RACE

Inputs as the original `race_utils.py` builds them: per option, the question with its blank
("_") filled by the option, or the question and the option joined by a space; that text keeps
its last `max_qa_length` tokens, and the article is cut to fit:
`[CLS] article [SEP] question+option [SEP]`. One score per option, softmax over the options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import ml_collections
import numpy as np

from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig, AlbertForMultipleChoice
from albert_jax.tasks import finetune
from albert_jax.tasks import metrics as metrics_lib
from albert_jax.tasks.examples import ChoiceExample
from albert_jax.tasks.finetune import EXAMPLE_INDEX, DevSet, Encoded, FinetuneTask
from albert_jax.tasks.losses import multiple_choice_sums
from albert_jax.tasks.readers import RaceFilesReader, RaceTfdsReader
from albert_jax.tasks.readers.race import read_articles
from albert_jax.train.task import Batch, FieldSpec, Sums

OPTIONS = ("A", "B", "C", "D")
NUM_OPTIONS = len(OPTIONS)


def race_config() -> ml_collections.ConfigDict:
    """The paper's RACE recipe (appendix A.4) with the v2 release's changes (README): learning
    rate 1e-5 and no ALBERT dropout, as 2e-5 with 0.1 made v2 models diverge."""
    config = finetune.finetune_config()
    config.task = "race"
    finetune.paper_recipe(config, learning_rate=1e-5, batch_size=32, train_steps=12000,
                          warmup_steps=1000, albert_dropout=0.0)
    config.data_dir = ""  # the RACE download: RACE/{train,dev,test}/{high,middle}/*.txt
    config.data.tfds_data_dir = ""  # without data_dir: tfds race/<level> from here (or tfds' default)
    config.data.level = "all"  # high, middle or all
    config.data.max_qa_length = 128
    return config


@dataclasses.dataclass(frozen=True, eq=False)
class MultipleChoiceTask(FinetuneTask):
    """Picks one of the options of each `ChoiceExample`."""

    max_qa_length: int = 128

    model_class = AlbertForMultipleChoice

    @staticmethod
    def head_labels(labels: tuple[str, ...] | None) -> tuple[int, tuple[str, ...]]:
        return 1, ()  # one score per option

    def example_spec(self, length: int) -> dict[str, FieldSpec]:
        return {
            "input_ids": ((NUM_OPTIONS, length), np.int32),
            "attention_mask": ((NUM_OPTIONS, length), np.int32),
            "token_type_ids": ((NUM_OPTIONS, length), np.int32),
            "labels": ((), np.int32),
            EXAMPLE_INDEX: ((), np.int32),
        }

    def head_sums(self, logits: jax.Array, batch: Batch) -> Sums:
        return multiple_choice_sums(logits, batch["labels"], self.weights(batch))

    def evaluate(self, sums: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> dict[str, float]:
        predicted = finetune.real_rows(outputs)["logits"].argmax(-1)
        return {"loss": self.eval_loss(sums), **self.score_dev_sets(lambda e: e.label, predicted)}

    def prediction_records(self, examples: Sequence[ChoiceExample], rows: dict[str, np.ndarray]) -> list[dict]:
        """Per question its id, the chosen option's letter and index, and each option's
        probability."""
        records = []
        for example, scores in zip(examples, rows["logits"]):
            probabilities = np.exp(scores - scores.max())
            probabilities /= probabilities.sum()
            choice = int(scores.argmax())
            records.append({"guid": example.guid, "answer": OPTIONS[choice], "label": choice,
                            "probabilities": [float(p) for p in probabilities]})
        return records

    def gold(self, example: ChoiceExample) -> int | None:
        return example.label

    def encode(self, tokenizer, examples: Sequence[ChoiceExample]) -> Encoded:
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        fields: dict[str, list[np.ndarray]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
        for example in examples:
            article = tokenizer.encode(example.article, add_special_tokens=False)
            rows = []
            for option in example.options:
                question = example.question
                text = question.replace("_", option) if "_" in question else f"{question} {option}"
                ending = tokenizer.encode(text, add_special_tokens=False)[-self.max_qa_length:]
                context = article[:max(self.max_length - 3 - len(ending), 0)]
                rows.append(([cls_id, *context, sep_id, *ending, sep_id], len(context) + 2))
            width = max(len(ids) for ids, _ in rows)
            ids = np.full((len(rows), width), tokenizer.pad_token_id, np.int32)
            mask = np.zeros((len(rows), width), np.int32)
            types = np.zeros((len(rows), width), np.int32)
            for i, (row, first) in enumerate(rows):
                ids[i, :len(row)], mask[i, :len(row)], types[i, first:len(row)] = row, 1, 1
            fields["input_ids"].append(ids)
            fields["attention_mask"].append(mask)
            fields["token_type_ids"].append(types)
        labels = np.array([example.label or 0 for example in examples], np.int32)
        return Encoded(tokens=fields, values={"labels": labels},
                       pad={"input_ids": tokenizer.pad_token_id, "attention_mask": 0, "token_type_ids": 0})


def _accuracy(labels, predictions) -> dict[str, float]:
    return {"accuracy": metrics_lib.accuracy(labels, predictions)}


def make_task(config: ml_collections.ConfigDict) -> MultipleChoiceTask:
    data = config.data
    if config.data_dir:
        reader = RaceFilesReader(config.data_dir, level=data.level)
    else:
        reader = RaceTfdsReader(level=data.level, data_dir=data.tfds_data_dir or None)
    if data.max_qa_length < 1:
        raise InputError(f"data.max_qa_length must be positive, got {data.max_qa_length}")
    return MultipleChoiceTask.create(
        config, name=f"race/{data.level}", labels=OPTIONS, train=reader.read("train"),
        dev=[DevSet(tuple(reader.read("dev")))], metrics_fn=_accuracy, best_metric="accuracy",
        max_qa_length=data.max_qa_length)


def for_prediction(config: ml_collections.ConfigDict, model: AlbertConfig, tokenizer_path: Path):
    """The task of a finished RACE run, and a reader of RACE article files (one JSON object per
    article, or per line)."""
    task = MultipleChoiceTask.for_prediction(config, model, OPTIONS, tokenizer_path,
                                             max_qa_length=config.data.max_qa_length)
    return task, read_articles
