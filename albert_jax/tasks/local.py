"""Any local classification or regression table (TSV, CSV or JSONL): one text or a pair, a label.

    albert-jax finetune --config configs/finetune/classification.py --workdir runs/mine \\
        --config.init_from=albert-base-v2 --config.data.train_file=train.tsv \\
        --config.data.dev_file=dev.tsv --config.data.text_column=sentence \\
        --config.data.label_column=label

The class names are read from the training file (sorted); a dev label the training file lacks
is an error naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import ml_collections
import numpy as np

from albert_jax.model import AlbertConfig
from albert_jax.tasks import finetune
from albert_jax.tasks import metrics as metrics_lib
from albert_jax.tasks.classification import TextClassificationTask
from albert_jax.tasks.finetune import DevSet
from albert_jax.tasks.readers import LocalTextReader


def classification_config() -> ml_collections.ConfigDict:
    """A recipe in the middle of the paper's GLUE table (MRPC/STS-B-like small data)."""
    config = finetune.finetune_config()
    config.task = "classification"
    finetune.paper_recipe(config, learning_rate=2e-5, batch_size=32, train_steps=1000,
                          warmup_steps=100, albert_dropout=0.0)
    config.data.train_file = ""
    config.data.dev_file = ""
    config.data.text_column = "text"
    config.data.text_pair_column = ""  # empty: single texts
    config.data.label_column = "label"
    config.data.task_type = "classification"  # or "regression"
    return config


def _classification_metrics(labels, predictions) -> dict[str, float]:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    out = {"accuracy": metrics_lib.accuracy(labels, predictions),
           "mcc": metrics_lib.matthews_corrcoef(labels, predictions)}
    if max(labels.max(), predictions.max()) <= 1:
        out["f1"] = metrics_lib.f1(labels, predictions)
    return out


def _regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    return {"pearson": metrics_lib.pearson(labels, predictions),
            "spearman": metrics_lib.spearman(labels, predictions)}


def make_task(config: ml_collections.ConfigDict) -> TextClassificationTask:
    data = config.data
    reader = LocalTextReader(
        train_file=data.train_file or None, dev_file=data.dev_file or None,
        text_column=data.text_column, text_pair_column=data.text_pair_column or None,
        label_column=data.label_column, task_type=data.task_type)
    regression = data.task_type == "regression"
    dev = [DevSet(tuple(reader.read("dev")))] if data.dev_file else []
    return TextClassificationTask.create(
        config, name=f"classification/{data.train_file}", labels=reader.labels, train=reader.read("train"),
        dev=dev, metrics_fn=_regression_metrics if regression else _classification_metrics,
        best_metric="pearson" if regression else "accuracy")


def for_prediction(config: ml_collections.ConfigDict, model: AlbertConfig, tokenizer_path: Path):
    """The task of a finished run, and a reader of tables with the training columns (the label
    column may be missing)."""
    data = config.data
    regression = data.task_type == "regression"
    labels = None if regression else model.id2label and tuple(model.id2label.values())

    def read(path):
        return LocalTextReader(test_file=path, text_column=data.text_column,
                               text_pair_column=data.text_pair_column or None, label_column=data.label_column,
                               task_type=data.task_type, labels=labels).read("test")

    return TextClassificationTask.for_prediction(config, model, labels, tokenizer_path), read
