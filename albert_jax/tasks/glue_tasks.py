"""The nine GLUE tasks: the one table of where each task's data is, what its labels are called and
how it is scored, shared by its readers (`tasks.readers.glue`), its metrics (`tasks.metrics`) and
`albert-jax evaluate glue`.

A task's name is tfds' config name ("sst2", "stsb"); `glue_task` also takes the GLUE download's
folder names in any case ("SST-2", "sts-b"). Columns and label names are those of the original
ALBERT processors (google-research/albert `classifier_utils.py`); metrics are GLUE's.

Plain Python only: the CLI imports this module to build its parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from albert_jax.errors import InputError

# split -> (file in the task's GLUE folder, tfds split)
_SPLITS = {"train": ("train.tsv", "train"), "dev": ("dev.tsv", "validation"), "test": ("test.tsv", "test")}
_MNLI_SPLITS = {
    "train": ("train.tsv", "train"),
    "dev": ("dev_matched.tsv", "validation_matched"),
    "dev_mismatched": ("dev_mismatched.tsv", "validation_mismatched"),
    "test": ("test_matched.tsv", "test_matched"),
    "test_mismatched": ("test_mismatched.tsv", "test_mismatched"),
}
_MISMATCHED_DEV = "dev_mismatched"
# Where the label is in a TSV row: the last field (MNLI's train and dev files differ in width).
_LAST = -1


@dataclasses.dataclass(frozen=True)
class TsvColumns:
    """Field indices of a GLUE TSV row: first text, second text (or None) and label (or None;
    negative counts from the end of the row)."""

    text_a: int
    text_b: int | None
    label: int | None = None

    def min_fields(self) -> int:
        return max(i for i in (self.text_a, self.text_b, self.label, 0) if i is not None) + 1


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task: where its data is, what its labels are called and how it is scored."""

    #: tfds' config name, e.g. "sst2"; the key of `GLUE_TASKS`.
    name: str
    #: The task's folder in the GLUE download, e.g. "SST-2".
    folder: str
    #: Label names as the GLUE files spell them, in the original's class-id order (class id i
    #: means labels[i]); None for STS-B's regression.
    labels: tuple[str, ...] | None
    #: Names of the dev-set metrics (keys of `metrics.glue_metrics`' result).
    metrics: tuple[str, ...]
    #: The metric the original ranked checkpoints by.
    main_metric: str
    train_dev_columns: TsvColumns
    test_columns: TsvColumns
    #: tfds feature names of the first and second text.
    tfds_features: tuple[str, str | None]
    #: tfds class name -> the original's label name, where they differ.
    tfds_label_names: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: The header-row name of the label column of the train and dev files; None: they have no
    #: header row (CoLA; its test file has one).
    label_header: str | None = "label"
    #: QQP has rows with missing fields; the original and tfds both skip them.
    skip_short_rows: bool = False
    #: split -> (TSV file name, tfds split name).
    split_sources: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=lambda: _SPLITS)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.split_sources)

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def has_mismatched(self) -> bool:
        """Whether the task has a second dev set of other genres (MNLI), whose metrics carry `_mm`."""
        return _MISMATCHED_DEV in self.split_sources

    @property
    def reported_metrics(self) -> tuple[str, ...]:
        """Every metric name the task reports, those of the mismatched dev set included."""
        return self.metrics + tuple(f"{name}_mm" for name in self.metrics if self.has_mismatched)

    @property
    def train_dev_header(self) -> bool:
        """Whether the train and dev files begin with a header row (every test file does)."""
        return self.label_header is not None


_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")
_ACCURACY = ("accuracy",)
_F1_ACCURACY = ("f1", "accuracy")

# Fields in order: name, folder, labels, metrics, main metric, train/dev columns (text_a, text_b,
# label), test columns, tfds text features, tfds label names.
GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in [
        GlueTask(
            "cola", "CoLA", _BINARY, ("mcc",), "mcc", TsvColumns(3, None, 1), TsvColumns(1, None),
            ("sentence", None), {"unacceptable": "0", "acceptable": "1"}, label_header=None,
        ),
        GlueTask(
            "sst2", "SST-2", _BINARY, _ACCURACY, "accuracy", TsvColumns(0, None, 1), TsvColumns(1, None),
            ("sentence", None), {"negative": "0", "positive": "1"},
        ),
        GlueTask(
            "mrpc", "MRPC", _BINARY, _F1_ACCURACY, "accuracy", TsvColumns(3, 4, 0), TsvColumns(3, 4),
            ("sentence1", "sentence2"), {"not_equivalent": "0", "equivalent": "1"}, label_header="Quality",
        ),
        GlueTask(
            "qqp", "QQP", _BINARY, _F1_ACCURACY, "accuracy", TsvColumns(3, 4, 5), TsvColumns(1, 2),
            ("question1", "question2"), {"not_duplicate": "0", "duplicate": "1"},
            label_header="is_duplicate", skip_short_rows=True,
        ),
        GlueTask(
            "stsb", "STS-B", None, ("pearson", "spearman"), "pearson", TsvColumns(7, 8, _LAST),
            TsvColumns(7, 8), ("sentence1", "sentence2"), label_header="score",
        ),
        GlueTask(
            "mnli", "MNLI", ("contradiction", "entailment", "neutral"), _ACCURACY, "accuracy",
            TsvColumns(8, 9, _LAST), TsvColumns(8, 9), ("premise", "hypothesis"),
            label_header="gold_label", split_sources=_MNLI_SPLITS,
        ),
        GlueTask(
            "qnli", "QNLI", _ENTAILMENT, _ACCURACY, "accuracy", TsvColumns(1, 2, _LAST), TsvColumns(1, 2),
            ("question", "sentence"),
        ),
        GlueTask(
            "rte", "RTE", _ENTAILMENT, _ACCURACY, "accuracy", TsvColumns(1, 2, _LAST), TsvColumns(1, 2),
            ("sentence1", "sentence2"),
        ),
        GlueTask(
            "wnli", "WNLI", _BINARY, _ACCURACY, "accuracy", TsvColumns(1, 2, _LAST), TsvColumns(1, 2),
            ("sentence1", "sentence2"), {"not_entailment": "0", "entailment": "1"},
        ),
    ]
}


def glue_task(name: str) -> GlueTask:
    """The task called `name` in any case, with or without the folder's hyphen: "sst2", "SST-2"."""
    task = GLUE_TASKS.get(name.lower().replace("-", ""))
    if task is None:
        raise InputError(f"unknown GLUE task {name!r}; the tasks are {', '.join(GLUE_TASKS)}")
    return task
