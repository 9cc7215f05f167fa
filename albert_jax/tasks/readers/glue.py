"""The nine GLUE tasks, from the GLUE TSV folders or from tensorflow-datasets `glue/<task>`.

Both sources give the same examples: the texts, column choices and label names of the original
ALBERT processors (google-research/albert `classifier_utils.py`), in file order, with guid
"<split>-<n>" where n counts the data rows of the split's file from 0. In the GLUE test files n
equals the `index` column, the id a GLUE submission uses. The one difference: tfds builds MRPC
from Microsoft's source files, so its train and dev rows are counted (n) in another order.

Labels are the original's names: "0"/"1" for CoLA, SST-2, MRPC, QQP and WNLI, the words for
MNLI, QNLI and RTE, and a float for STS-B. tfds numbers its classes in its own order (MNLI:
entailment, neutral, contradiction; WNLI: not_entailment, entailment); those numbers are turned
back into the original's names, and test labels (-1 in tfds, absent in the TSV) become None.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
from collections.abc import Mapping

import numpy as np
from etils import epath

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TextExample
from albert_jax.tasks.readers.base import ExampleReader, shown
from albert_jax.tasks.readers.files import PathLike, delimited_rows
from albert_jax.tasks.readers.tfds_source import text, tfds_builder, tfds_examples

log = logging.getLogger(__name__)

# split -> (file in the task's GLUE folder, tfds split)
_SPLITS = {"train": ("train.tsv", "train"), "dev": ("dev.tsv", "validation"), "test": ("test.tsv", "test")}
_MNLI_SPLITS = {
    "train": ("train.tsv", "train"),
    "dev": ("dev_matched.tsv", "validation_matched"),
    "dev_mismatched": ("dev_mismatched.tsv", "validation_mismatched"),
    "test": ("test_matched.tsv", "test_matched"),
    "test_mismatched": ("test_mismatched.tsv", "test_mismatched"),
}
# Where the label is in a TSV row: the last field (MNLI's train and dev files differ in width).
_LAST = -1


@dataclasses.dataclass(frozen=True)
class _Columns:
    """Field indices of a TSV row: first text, second text (or None) and label (or None)."""

    text_a: int
    text_b: int | None
    label: int | None = None

    def min_fields(self) -> int:
        return max(i for i in (self.text_a, self.text_b, self.label, 0) if i is not None) + 1


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where its data is and what its labels are called."""

    name: str
    #: The task's folder in the GLUE download, e.g. "SST-2".
    folder: str
    #: Label names in class-id order (the original's order); None for STS-B's regression.
    labels: tuple[str, ...] | None
    #: split -> (TSV file name, tfds split name).
    split_sources: Mapping[str, tuple[str, str]]
    train_dev_columns: _Columns
    test_columns: _Columns
    #: tfds feature names of the first and second text.
    tfds_features: tuple[str, str | None]
    #: tfds class name -> the original's label name, where they differ.
    tfds_label_names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: CoLA's train and dev files have no header row (its test file has one).
    train_dev_header: bool = True
    #: QQP has rows with missing fields; the original and tfds both skip them.
    skip_short_rows: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.split_sources)


_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")

# Fields in order: name, folder, labels, splits, train/dev columns (text_a, text_b, label), test
# columns, tfds text features, tfds label names; the columns are those of the original processors.
GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in [
        GlueTask(
            "cola", "CoLA", _BINARY, _SPLITS, _Columns(3, None, 1), _Columns(1, None),
            ("sentence", None), {"unacceptable": "0", "acceptable": "1"}, train_dev_header=False,
        ),
        GlueTask(
            "sst2", "SST-2", _BINARY, _SPLITS, _Columns(0, None, 1), _Columns(1, None),
            ("sentence", None), {"negative": "0", "positive": "1"},
        ),
        GlueTask(
            "mrpc", "MRPC", _BINARY, _SPLITS, _Columns(3, 4, 0), _Columns(3, 4),
            ("sentence1", "sentence2"), {"not_equivalent": "0", "equivalent": "1"},
        ),
        GlueTask(
            "qqp", "QQP", _BINARY, _SPLITS, _Columns(3, 4, 5), _Columns(1, 2),
            ("question1", "question2"), {"not_duplicate": "0", "duplicate": "1"},
            skip_short_rows=True,
        ),
        GlueTask(
            "stsb", "STS-B", None, _SPLITS, _Columns(7, 8, _LAST), _Columns(7, 8),
            ("sentence1", "sentence2"),
        ),
        GlueTask(
            "mnli", "MNLI", ("contradiction", "entailment", "neutral"), _MNLI_SPLITS,
            _Columns(8, 9, _LAST), _Columns(8, 9), ("premise", "hypothesis"),
        ),
        GlueTask(
            "qnli", "QNLI", _ENTAILMENT, _SPLITS, _Columns(1, 2, _LAST), _Columns(1, 2),
            ("question", "sentence"),
        ),
        GlueTask(
            "rte", "RTE", _ENTAILMENT, _SPLITS, _Columns(1, 2, _LAST), _Columns(1, 2),
            ("sentence1", "sentence2"),
        ),
        GlueTask(
            "wnli", "WNLI", _BINARY, _SPLITS, _Columns(1, 2, _LAST), _Columns(1, 2),
            ("sentence1", "sentence2"), {"not_entailment": "0", "entailment": "1"},
        ),
    ]
}


def glue_task(name: str) -> GlueTask:
    """The task called `name`; the original's spellings ("SST-2", "sts-b") are accepted too."""
    key = name.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise InputError(f"unknown GLUE task {name!r}; the tasks are {', '.join(GLUE_TASKS)}")
    return GLUE_TASKS[key]


class GlueTsvReader(ExampleReader[TextExample]):
    """A GLUE task from the folder layout of the GLUE download: `data_dir/MNLI/train.tsv`, ...

    Fields are tab-separated with no quoting (GLUE texts contain unbalanced quotes).
    """

    def __init__(self, task: str, data_dir: PathLike) -> None:
        self.task = glue_task(task)
        self.data_dir = epath.Path(data_dir)
        self.name = f"GLUE {self.task.name} (TSV files in {str(self.data_dir)!r})"
        self.splits = self.task.splits

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.task.labels

    def _read(self, split: str) -> list[TextExample]:
        task = self.task
        file_name = task.split_sources[split][0]
        path = self.data_dir / task.folder / file_name
        if not path.exists():
            raise InputError(
                f"GLUE {task.name}: no file {str(path)!r} (the GLUE layout is "
                f"DATA_DIR/{task.folder}/{file_name})"
            )
        labelled = not split.startswith("test")
        columns = task.train_dev_columns if labelled else task.test_columns
        rows = delimited_rows(path, delimiter="\t", quoting=csv.QUOTE_NONE)
        if task.train_dev_header or not labelled:
            next(rows, None)
        examples, skipped = [], 0
        for n, (line, fields) in enumerate(rows):
            if len(fields) < columns.min_fields():
                if task.skip_short_rows:
                    skipped += 1
                    continue
                raise InputError(
                    f"{path}:{line}: {len(fields)} tab-separated fields; GLUE {task.name} rows "
                    f"have at least {columns.min_fields()}"
                )
            label = _tsv_label(task, fields[columns.label], path, line) if labelled else None
            text_b = fields[columns.text_b] if columns.text_b is not None else None
            examples.append(TextExample(f"{split}-{n}", fields[columns.text_a], text_b, label))
        if skipped:
            log.warning("%s: skipped %d row(s) with missing fields", path, skipped)
        if not examples:
            raise InputError(f"{path}: no examples")
        return examples


class GlueTfdsReader(ExampleReader[TextExample]):
    """A GLUE task from the tensorflow-datasets dataset `glue/<task>`, prepared in `data_dir`
    (default: tfds' data dir). Stored as TFRecord unless built with `--file_format array_record`;
    TFRecord needs TensorFlow."""

    def __init__(self, task: str, data_dir: PathLike | None = None) -> None:
        self.task = glue_task(task)
        self.data_dir = data_dir
        self.name = f"tfds glue/{self.task.name}"
        self.splits = self.task.splits

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.task.labels

    def _read(self, split: str) -> list[TextExample]:
        task = self.task
        builder = tfds_builder(f"glue/{task.name}", self.data_dir)
        label_names = self._label_names(builder)
        first, second = task.tfds_features
        # tfds stores examples in a hashed order; the row index restores the files' order.
        records = sorted(tfds_examples(builder, task.split_sources[split][1]), key=lambda r: int(r["idx"]))
        examples = []
        for record in records:
            raw = record["label"]
            if raw < 0:  # tfds' label for the unlabelled test sets
                label = None
            elif label_names is None:
                # STS-B is stored as float32: its shortest repr gives back the TSV's decimal.
                label = float(str(np.float32(raw)))
            else:
                label = label_names[int(raw)]
            text_b = text(record[second]) if second else None
            examples.append(TextExample(f"{split}-{int(record['idx'])}", text(record[first]), text_b, label))
        return examples

    def _label_names(self, builder) -> tuple[str, ...] | None:
        """The original's label name of each tfds class id, from the dataset's feature info."""
        task = self.task
        if task.labels is None:
            return None
        tfds_names = tuple(builder.info.features["label"].names)
        names = tuple(task.tfds_label_names.get(name, name) for name in tfds_names)
        if sorted(names) != sorted(task.labels):
            raise InputError(
                f"tfds glue/{task.name}: classes {list(tfds_names)} do not match GLUE's {list(task.labels)}"
            )
        return names


def _tsv_label(task: GlueTask, value: str, path: epath.Path, line: int) -> str | float:
    value = value.strip()
    if task.labels is None:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise InputError(f"{path}:{line}: label {shown(value)} is not a number")
        return score
    if value not in task.labels:
        raise InputError(f"{path}:{line}: label {shown(value)} is not one of {', '.join(task.labels)}")
    return value

