"""Any classification or regression set in local (or `gs://`) files: TSV, CSV or JSONL.

The format follows the extension:
- `.tsv`: a header row naming the columns, then one example per line, fields split by tabs with
  no quoting (as in GLUE: a field cannot hold a tab or a line break, quotes are kept as text);
- `.csv`: a header row, then rows as the `csv` module reads them (quoted fields may hold commas,
  quotes and line breaks);
- `.jsonl`: one JSON object per line; its keys are the columns.

Classification labels are names (strings; JSON integers are taken as their decimal text). The
label set is read from the training file and sorted: by numeric value when every label is an
integer ("2" before "10"), otherwise as strings. Class id i is `labels[i]`. A label in the dev or
test file must occur in the training file. Regression labels are finite numbers.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

from etils import epath

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TextExample
from albert_jax.tasks.readers.base import ExampleReader, shown
from albert_jax.tasks.readers.files import PathLike, delimited_rows, json_lines

TaskType = Literal["classification", "regression"]
TASK_TYPES = ("classification", "regression")

# extension -> (delimiter, quoting) of the delimited formats.
_DELIMITED = {".tsv": ("\t", csv.QUOTE_NONE), ".csv": (",", csv.QUOTE_MINIMAL)}
_FORMATS = (*_DELIMITED, ".jsonl")
_INTEGER = re.compile(r"[+-]?\d+")


class LocalTextReader(ExampleReader[TextExample]):
    """Examples from `train_file`, `dev_file` and `test_file` (splits "train", "dev", "test"; a
    split exists when its file is given).

    `text_pair_column` names the second text of a pair task. The test file's label column is
    optional: without it, labels are None. `labels` fixes the label set instead of reading it
    from the training file (e.g. the names saved with a fine-tuned model).
    """

    def __init__(
        self,
        *,
        train_file: PathLike | None = None,
        dev_file: PathLike | None = None,
        test_file: PathLike | None = None,
        text_column: str,
        text_pair_column: str | None = None,
        label_column: str,
        task_type: TaskType = "classification",
        labels: Sequence[str] | None = None,
    ) -> None:
        if task_type not in TASK_TYPES:
            raise InputError(f"task_type {task_type!r} is not one of {', '.join(TASK_TYPES)}")
        files = {"train": train_file, "dev": dev_file, "test": test_file}
        self.files = {split: epath.Path(path) for split, path in files.items() if path}
        if not self.files:
            raise InputError("no data files given: set train_file, dev_file or test_file")
        for path in self.files.values():
            if path.suffix.lower() not in _FORMATS:
                raise InputError(f"{str(path)!r}: unknown format; use one of {', '.join(_FORMATS)}")
        if task_type == "regression" and labels is not None:
            raise InputError("labels are class names: a regression task has none")
        if task_type == "classification" and labels is None and "train" not in self.files:
            raise InputError("a classification task needs train_file (its labels are the label set)")
        self.splits = tuple(self.files)
        self.name = f"local {task_type} files"
        self.task_type = task_type
        self.text_column, self.text_pair_column = text_column, text_pair_column
        self.label_column = label_column
        self._labels = tuple(map(str, labels)) if labels is not None else None
        self._label_source = "the labels of the training file" if labels is None else "the given labels"
        self._train: list[TextExample] | None = None

    @property
    def labels(self) -> tuple[str, ...] | None:
        if self.task_type == "regression":
            return None
        if self._labels is None:
            self._labels = label_set(example.label for example in self._train_examples())
        return self._labels

    def _read(self, split: str) -> list[TextExample]:
        if split == "train":
            return self._train_examples()
        return self._examples(split, known_labels=self.labels)

    def _train_examples(self) -> list[TextExample]:
        if self._train is None:
            self._train = self._examples("train", known_labels=self._labels)
        return self._train

    def _examples(self, split: str, known_labels: tuple[str, ...] | None) -> list[TextExample]:
        path = self.files[split]
        text_columns = [self.text_column] + ([self.text_pair_column] if self.text_pair_column else [])
        label_optional = split == "test"
        examples = []
        for n, (line, record) in enumerate(_records(path, text_columns, self.label_column, label_optional)):
            texts = [_text(record[column], column, path, line) for column in text_columns]
            label = None
            if self.label_column in record:
                label = self._label(record[self.label_column], path, line)
                if known_labels is not None and label not in known_labels:
                    raise InputError(
                        f"{path}:{line}: label {shown(label)} is not one of {self._label_source}: "
                        f"{', '.join(known_labels)}"
                    )
            examples.append(TextExample(f"{split}-{n}", texts[0], texts[1] if len(texts) > 1 else None, label))
        if not examples:
            raise InputError(f"{path}: no examples")
        return examples

    def _label(self, value: Any, path: epath.Path, line: int) -> str | float:
        column = self.label_column
        if self.task_type == "regression":
            try:
                # bool is an int to Python, but true/false is no regression target.
                score = math.nan if isinstance(value, bool) else float(value)
            except (TypeError, ValueError):
                score = math.nan
            if not math.isfinite(score):
                raise InputError(f"{path}:{line}: label {shown(value)} in column {column!r} is not a number")
            return score
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise InputError(f"{path}:{line}: label {shown(value)} in column {column!r} is not a string or integer")
        if not value.strip():
            raise InputError(f"{path}:{line}: empty label in column {column!r}")
        return value.strip()


def label_set(labels: Iterable[Any]) -> tuple[str, ...]:
    """The distinct labels, sorted: by value when all are integers ("2" before "10"), else as
    strings. This order is the class-id order."""
    distinct = set(labels)
    if all(_INTEGER.fullmatch(label) for label in distinct):
        return tuple(sorted(distinct, key=lambda label: (int(label), label)))
    return tuple(sorted(distinct))


def _records(
    path: epath.Path, text_columns: list[str], label_column: str, label_optional: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, column -> value) for each example; checks that the columns exist."""
    required = text_columns + ([] if label_optional else [label_column])
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        for line, record in json_lines(path):
            if not isinstance(record, dict):
                raise InputError(f"{path}:{line}: expected a JSON object, found {type(record).__name__}")
            _check_columns(required, list(record), f"{path}:{line}")
            yield line, record
        return
    delimiter, quoting = _DELIMITED[suffix]
    rows = delimited_rows(path, delimiter=delimiter, quoting=quoting)
    header = next(rows, None)
    if header is None:
        return
    header_line, columns = header
    _check_columns(required, columns, f"{path}:{header_line}")
    wanted = [column for column in (*text_columns, label_column) if column in columns]
    indices = {column: columns.index(column) for column in wanted}
    for line, fields in rows:
        if len(fields) != len(columns):
            raise InputError(f"{path}:{line}: {len(fields)} fields, the header has {len(columns)}")
        yield line, {column: fields[i] for column, i in indices.items()}


def _check_columns(required: list[str], found: list[str], where: str) -> None:
    for column in required:
        if column not in found:
            raise InputError(f"{where}: no column {column!r}; the columns are {', '.join(map(repr, found))}")


def _text(value: Any, column: str, path: epath.Path, line: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"{path}:{line}: column {column!r} holds {shown(value)}, not text")
    return value
