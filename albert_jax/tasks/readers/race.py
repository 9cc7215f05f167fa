"""RACE reading comprehension, from the official download or from tensorflow-datasets `race/*`.

The download (RACE.tar.gz) unpacks to `RACE/{train,dev,test}/{high,middle}/*.txt`: each file is
one article as a JSON object with `id`, `article`, `questions`, `options` (four per question)
and `answers` (letters A-D). Each question becomes one ChoiceExample with guid
"<article id>-<question index>". Articles come in sorted order (high before middle, then by file
name, or by tfds example id, which is the level and the file name), so both sources agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from etils import epath

from albert_jax.errors import InputError
from albert_jax.tasks.examples import ChoiceExample
from albert_jax.tasks.readers.base import ExampleReader, shown
from albert_jax.tasks.readers.files import PathLike, json_lines
from albert_jax.tasks.readers.tfds_source import text, texts, tfds_builder, tfds_examples

LEVELS = ("high", "middle")
ANSWERS = ("A", "B", "C", "D")
_SPLITS = ("train", "dev", "test")
_KEYS = ("id", "article", "questions", "options", "answers")


def _levels(level: str) -> tuple[str, ...]:
    if level == "all":
        return LEVELS
    if level not in LEVELS:
        raise InputError(f"RACE level {level!r} is not one of all, {', '.join(LEVELS)}")
    return (level,)


class RaceFilesReader(ExampleReader[ChoiceExample]):
    """RACE from the unpacked download: `data_dir` is the RACE folder or the folder above it.

    `level` is "high", "middle" or "all" (both). A file may also hold several articles, one JSON
    object per line (as the `all.txt` files the original ALBERT scripts read).
    """

    splits = _SPLITS
    labels = ANSWERS

    def __init__(self, data_dir: PathLike, *, level: str = "all") -> None:
        self.levels = _levels(level)
        data_dir = epath.Path(data_dir)
        nested = data_dir / "RACE"
        self.data_dir = nested if not (data_dir / "train").exists() and nested.exists() else data_dir
        self.name = f"RACE {level} (files in {str(self.data_dir)!r})"

    def _read(self, split: str) -> list[ChoiceExample]:
        examples: list[ChoiceExample] = []
        seen: dict[str, str] = {}  # article id -> where it was read
        for level in self.levels:
            folder = self.data_dir / split / level
            if not folder.is_dir():
                raise InputError(f"RACE: no folder {str(folder)!r} (the layout is RACE/{split}/{level}/*.txt)")
            paths = sorted(folder.glob("*.txt"))
            if not paths:
                raise InputError(f"RACE: no .txt files in {str(folder)!r}")
            for path in paths:
                examples.extend(read_articles(path, seen))
        return examples


class RaceTfdsReader(ExampleReader[ChoiceExample]):
    """RACE from the tensorflow-datasets datasets `race/high` and `race/middle` (both for "all"),
    prepared in `data_dir` (default: tfds' data dir). TFRecord needs TensorFlow."""

    splits = _SPLITS
    labels = ANSWERS

    def __init__(self, *, level: str = "all", data_dir: PathLike | None = None) -> None:
        self.levels = _levels(level)
        self.data_dir = data_dir
        self.name = f"tfds race/{level}"

    def _read(self, split: str) -> list[ChoiceExample]:
        examples = []
        for level in self.levels:
            name = f"race/{level}"
            records = []
            for n, record in enumerate(tfds_examples(tfds_builder(name, self.data_dir), split)):
                record = {
                    "id": text(record["example_id"]),
                    "article": text(record["article"]),
                    "questions": list(texts(record["questions"])),
                    "options": [list(texts(options)) for options in record["options"]],
                    "answers": list(texts(record["answers"])),
                }
                records.append((record, f"tfds {name} {split} example {n}"))
            for record, where in sorted(records, key=lambda pair: pair[0]["id"]):
                examples.extend(_article_examples(record, where))
        return examples


def read_articles(path: PathLike, seen: dict[str, str] | None = None) -> list[ChoiceExample]:
    """The questions of every article in one file (one JSON object per line, or the whole file
    one object). `seen` (article id -> where it was read) catches an article read twice."""
    seen = {} if seen is None else seen
    examples = []
    for line, record in json_lines(path):
        where = f"{path}:{line}"
        examples.extend(_article_examples(record, where))
        article_id = record["id"]
        if article_id in seen:
            raise InputError(
                f"{where}: article id {article_id!r} was read before, at {seen[article_id]} "
                "(an all.txt beside the article files?)"
            )
        seen[article_id] = where
    return examples


def _article_examples(record: Any, where: str) -> list[ChoiceExample]:
    """The questions of one article as examples; InputError, naming `where`, if malformed."""
    if not isinstance(record, Mapping):
        raise InputError(f"{where}: expected a JSON object, found {type(record).__name__}")
    for key in _KEYS:
        if key not in record:
            raise InputError(f"{where}: missing key {key!r}")
    article_id, article = record["id"], record["article"]
    questions, options, answers = record["questions"], record["options"], record["answers"]
    if not isinstance(article_id, str) or not isinstance(article, str):
        raise InputError(f"{where}: 'id' and 'article' must be strings")
    if not all(isinstance(value, list) for value in (questions, options, answers)):
        raise InputError(f"{where}: 'questions', 'options' and 'answers' must be lists")
    if not len(questions) == len(options) == len(answers):
        raise InputError(
            f"{where}: {len(questions)} questions, {len(options)} option lists and "
            f"{len(answers)} answers; they must be as many"
        )
    examples = []
    for i, (question, choices, answer) in enumerate(zip(questions, options, answers)):
        if not isinstance(choices, list) or len(choices) != len(ANSWERS):
            count = len(choices) if isinstance(choices, list) else shown(choices)
            raise InputError(f"{where}: question {i} has {count} options; RACE has {len(ANSWERS)}")
        if answer not in ANSWERS:
            raise InputError(f"{where}: question {i} has answer {shown(answer)}, not one of A, B, C, D")
        if not isinstance(question, str) or not all(isinstance(choice, str) for choice in choices):
            raise InputError(f"{where}: question {i} and its options must be strings")
        examples.append(ChoiceExample(f"{article_id}-{i}", article, question, tuple(choices), ANSWERS.index(answer)))
    return examples
