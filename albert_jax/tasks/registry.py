"""Which task a config trains (`config.task`), and the config resolved with it."""

from __future__ import annotations

import difflib

import ml_collections

from albert_jax.errors import InputError
from albert_jax.train import config as config_lib
from albert_jax.train.task import Task


def _pretraining(config: ml_collections.ConfigDict) -> Task:
    from albert_jax.tasks.pretraining import PretrainingTask

    return PretrainingTask.from_config(config)


def _glue(config: ml_collections.ConfigDict) -> Task:
    from albert_jax.tasks import glue

    return glue.make_task(config)


def _classification(config: ml_collections.ConfigDict) -> Task:
    from albert_jax.tasks import local

    return local.make_task(config)


def _race(config: ml_collections.ConfigDict) -> Task:
    from albert_jax.tasks import race

    return race.make_task(config)


def _tagging(config: ml_collections.ConfigDict) -> Task:
    from albert_jax.tasks import tagging

    return tagging.make_task(config)


def _squad(config: ml_collections.ConfigDict) -> Task:
    from albert_jax.tasks import squad

    return squad.make_task(config)


TASKS = {
    "pretraining": _pretraining,
    "glue": _glue,
    "classification": _classification,
    "race": _race,
    "tagging": _tagging,
    "squad": _squad,
}


def make_task(config: ml_collections.ConfigDict) -> Task:
    name = config.task
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise InputError(f"unknown task {name!r}{hint} (known: {', '.join(sorted(TASKS))})")
    return TASKS[name](config)


def resolve(config: ml_collections.ConfigDict) -> config_lib.Run:
    """The config checked and resolved into its typed pieces, with its task."""
    return config_lib.resolve(config, make_task)


# Finished runs' tasks for `albert-jax predict`, by `config.task`: the module whose
# `for_prediction(config, model, tokenizer_path)` gives the task and a reader of input files.
PREDICTION_MODULES = {
    "glue": "albert_jax.tasks.glue",
    "classification": "albert_jax.tasks.local",
    "race": "albert_jax.tasks.race",
    "tagging": "albert_jax.tasks.tagging",
    "squad": "albert_jax.tasks.squad",
}


def prediction_task(config: ml_collections.ConfigDict, model, tokenizer_path):
    """(task, read) of a finished fine-tuning run, without its training data."""
    import importlib

    if config.task not in PREDICTION_MODULES:
        raise InputError(f"runs of task {config.task!r} make no predictions; predict takes runs of "
                         f"{', '.join(PREDICTION_MODULES)}")
    return importlib.import_module(PREDICTION_MODULES[config.task]).for_prediction(config, model, tokenizer_path)
