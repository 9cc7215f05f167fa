"""The nine GLUE tasks (`tasks.glue_tasks`), from the GLUE TSV folders or from tensorflow-datasets
`glue/<task>`.

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
import logging
import math

import numpy as np
from etils import epath

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TextExample
from albert_jax.tasks.glue_tasks import GlueTask, glue_task
from albert_jax.tasks.readers.base import ExampleReader, shown
from albert_jax.tasks.readers.files import PathLike, delimited_rows
from albert_jax.tasks.readers.tfds_source import text, tfds_builder, tfds_examples

log = logging.getLogger(__name__)


class _GlueReader(ExampleReader[TextExample]):
    """A GLUE task's splits and labels, whichever the source."""

    def __init__(self, task: str) -> None:
        self.task = glue_task(task)
        self.splits = self.task.splits

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.task.labels


class GlueTsvReader(_GlueReader):
    """A GLUE task from the folder layout of the GLUE download: `data_dir/MNLI/train.tsv`, ...

    Fields are tab-separated with no quoting (GLUE texts contain unbalanced quotes).
    """

    def __init__(self, task: str, data_dir: PathLike) -> None:
        super().__init__(task)
        self.data_dir = epath.Path(data_dir)
        self.name = f"GLUE {self.task.name} (TSV files in {str(self.data_dir)!r})"

    def _read(self, split: str) -> list[TextExample]:
        task = self.task
        file_name = task.split_sources[split][0]
        path = self.data_dir / task.folder / file_name
        if not path.exists():
            raise InputError(
                f"GLUE {task.name}: no file {str(path)!r} (the GLUE layout is "
                f"DATA_DIR/{task.folder}/{file_name})"
            )
        return self.read_file(path, split)

    def read_file(self, path: PathLike, split: str = "test") -> list[TextExample]:
        """One file in the layout of the task's `split` (test: unlabelled, guid "test-<index>")."""
        task = self.task
        path = epath.Path(path)
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


class GlueTfdsReader(_GlueReader):
    """A GLUE task from the tensorflow-datasets dataset `glue/<task>`, prepared in `data_dir`
    (default: tfds' data dir). Stored as TFRecord unless built with `--file_format array_record`;
    TFRecord needs TensorFlow."""

    def __init__(self, task: str, data_dir: PathLike | None = None) -> None:
        super().__init__(task)
        self.data_dir = data_dir
        self.name = f"tfds glue/{self.task.name}"

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

