"""Dataset readers of fine-tuning: raw examples in, nothing tokenized.

Every reader has `splits`, `labels` (class names in class-id order, None for regression) and
`read(split) -> list[example]`; bad input raises InputError naming the file and line. Each
dataset has a reader of its files and one of its tensorflow-datasets form; both give examples of
the same type with the same label names.
"""

from albert_jax.tasks.readers.base import ExampleReader
from albert_jax.tasks.readers.conll import ConllFilesReader, ConllTfdsReader
from albert_jax.tasks.readers.glue import GlueTfdsReader, GlueTsvReader
from albert_jax.tasks.readers.local import LocalTextReader, label_set
from albert_jax.tasks.readers.race import RaceFilesReader, RaceTfdsReader
from albert_jax.tasks.readers.tfds_source import TF_EXTRA

__all__ = [
    "TF_EXTRA",
    "ConllFilesReader",
    "ConllTfdsReader",
    "ExampleReader",
    "GlueTfdsReader",
    "GlueTsvReader",
    "LocalTextReader",
    "RaceFilesReader",
    "RaceTfdsReader",
    "label_set",
]
