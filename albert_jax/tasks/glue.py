"""GLUE: the nine tasks, from the GLUE download's TSV folders or tensorflow-datasets, with the
paper's fine-tuning recipe per task and the official metrics.

    albert-jax finetune --config configs/finetune/glue.py:sst2 --workdir runs/sst2 \\
        --config.init_from=albert-base-v2 --config.data_dir=glue_data

`data_dir` is the folder the original scripts read (DATA_DIR/SST-2/train.tsv, ...); without it
the data comes from tfds `glue/<task>` (stored as TFRecord, read with `pip install 'albert_jax[tf]'`).
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from albert_jax.model import AlbertConfig
from albert_jax.tasks import finetune
from albert_jax.tasks.classification import TextClassificationTask
from albert_jax.tasks.finetune import DevSet
from albert_jax.tasks.glue_tasks import glue_task
from albert_jax.tasks.metrics import glue_metrics
from albert_jax.tasks.readers import GlueTfdsReader, GlueTsvReader

# The paper's fine-tuning table (Lan et al. 2019, appendix A.4; the same numbers as the original
# run_glue.sh): learning rate, batch size, ALBERT dropout, train steps, warmup steps. Classifier
# dropout is 0.1 and the maximum length 512 for every task.
PAPER_RECIPES = {
    "cola": (1e-5, 16, 0.0, 5336, 320),
    "stsb": (2e-5, 16, 0.0, 3598, 214),
    "sst2": (1e-5, 32, 0.0, 20935, 1256),
    "mnli": (3e-5, 128, 0.0, 10000, 1000),
    "qnli": (1e-5, 32, 0.0, 33112, 1986),
    "qqp": (5e-5, 128, 0.1, 14000, 1000),
    "rte": (3e-5, 32, 0.1, 800, 200),
    "mrpc": (2e-5, 32, 0.0, 800, 200),
    "wnli": (2e-5, 16, 0.1, 2000, 250),
}


def glue_config(task: str) -> ml_collections.ConfigDict:
    """The fine-tuning config of GLUE `task` with the paper's recipe."""
    name = glue_task(task).name
    config = finetune.finetune_config()
    config.task = "glue"
    learning_rate, batch_size, dropout, steps, warmup = PAPER_RECIPES[name]
    finetune.paper_recipe(config, learning_rate=learning_rate, batch_size=batch_size,
                          train_steps=steps, warmup_steps=warmup, albert_dropout=dropout)
    config.data.task = name
    # The GLUE download's folder (DATA_DIR/<Task>/*.tsv), under the original's flag name; empty:
    # tensorflow-datasets glue/<task> from `data.tfds_data_dir` (empty: tfds' default).
    config.data_dir = ""
    config.data.tfds_data_dir = ""
    return config


def make_task(config: ml_collections.ConfigDict) -> TextClassificationTask:
    task = glue_task(config.data.task)
    if config.data_dir:
        reader = GlueTsvReader(task.name, config.data_dir)
    else:
        reader = GlueTfdsReader(task.name, config.data.tfds_data_dir or None)
    dev = [DevSet(tuple(reader.read("dev")))]
    if task.has_mismatched:
        dev.append(DevSet(tuple(reader.read("dev_mismatched")), "_mm"))

    def metrics(labels, predictions):
        return glue_metrics(task.name, labels, predictions)

    return TextClassificationTask.create(
        config, name=f"glue/{task.name}", labels=None if task.is_regression else reader.labels,
        train=reader.read("train"), dev=dev, metrics_fn=metrics, best_metric=task.main_metric)


def for_prediction(config: ml_collections.ConfigDict, model: AlbertConfig, tokenizer_path: Path):
    """The task of a finished GLUE run, and a reader of GLUE test files (TASK/test.tsv layout)."""
    task = glue_task(config.data.task)
    labels = None if task.is_regression else task.labels
    reader = GlueTsvReader(task.name, ".")
    return (TextClassificationTask.for_prediction(config, model, labels, tokenizer_path),
            lambda path: reader.read_file(path, "test"))
