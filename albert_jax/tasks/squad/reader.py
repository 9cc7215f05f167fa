"""SQuAD questions from files in the dataset's JSON layout or from tensorflow-datasets `squad/*`.

The layout (train-v1.1.json, dev-v2.0.json, or any file like them):

    {"data": [{"paragraphs": [{"context": "...", "qas": [
        {"id": "...", "question": "...", "answers": [{"text": "...", "answer_start": 42}],
         "is_impossible": false}]}]}]}

Each question becomes one `SquadExample`, in file order. What is checked, with an InputError
naming the file and the question id: the layout itself; ids unique; every SQuAD 1.1 question has
an answer; no question both marked `is_impossible` and answered; and in training data, the
answer learned from (the first) lies at its `answer_start` in the context. A SQuAD 2.0 question
without answers is unanswerable, marked or not (as the official evaluation takes it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from albert_jax.errors import InputError
from albert_jax.tasks.files import PathLike, read_text
from albert_jax.tasks.readers.base import ExampleReader, shown
from albert_jax.tasks.readers.tfds_source import text, texts, tfds_builder, tfds_examples
from albert_jax.tasks.squad_metrics import V1, V2, SquadDataset

VERSIONS = {"v1.1": V1, "v2.0": V2}
# What a reader checks of each question: training data must place its answers, dev data must
# have them (as gold answers), prediction input may lack them.
MODES = ("train", "dev", "predict")


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question about one context.

    `answers` are the gold answer texts (empty: unanswerable, or unknown in prediction input).
    `answer_span` is the (start, end) character span in `context` of the answer a training
    example teaches, None for an unanswerable one and outside training data.
    """

    qid: str
    question: str
    context: str
    answers: tuple[str, ...]
    answer_span: tuple[int, int] | None = None


def squad_version(name: str) -> str:
    """"v1.1" or "v2.0" (also "1.1", "2.0") as squad_metrics' version ("1.1", "2.0")."""
    version = VERSIONS.get(name) or VERSIONS.get(f"v{name}")
    if version is None:
        raise InputError(f"unknown SQuAD version {name!r}; choose v1.1 or v2.0")
    return version


def gold_answers(examples: Iterable[SquadExample], version: str, source: str) -> SquadDataset:
    """The gold answers of `examples`, for `squad_metrics.evaluate`."""
    return SquadDataset(source, version, {example.qid: example.answers for example in examples})


class SquadFilesReader(ExampleReader[SquadExample]):
    """SQuAD from `train_file` and `dev_file` (a split exists when its file is given), read as
    `version` ("1.1" or "2.0")."""

    labels = None

    def __init__(self, version: str, *, train_file: PathLike | None = None,
                 dev_file: PathLike | None = None) -> None:
        self.version = version
        self.files = {split: file for split, file in (("train", train_file), ("dev", dev_file)) if file}
        self.splits = tuple(self.files)
        self.name = f"SQuAD {version} files"

    def _read(self, split: str) -> list[SquadExample]:
        return read_squad_file(self.files[split], self.version, mode=split)


class SquadTfdsReader(ExampleReader[SquadExample]):
    """SQuAD from tensorflow-datasets `squad/v1.1` or `squad/v2.0`, prepared in `data_dir`
    (default: tfds' data dir). Stored as TFRecord, it reads with TensorFlow (the `tf` extra)."""

    labels = None
    splits = ("train", "dev")

    def __init__(self, version: str, *, data_dir: PathLike | None = None) -> None:
        self.version, self.data_dir = version, data_dir
        self.name = f"tfds squad/v{version}"

    def _read(self, split: str) -> list[SquadExample]:
        name = f"squad/v{self.version}"
        tfds_split = "validation" if split == "dev" else split
        builder = tfds_builder(name, self.data_dir)

        def questions() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
            for n, record in enumerate(tfds_examples(builder, tfds_split)):
                answers = record["answers"]
                question = {
                    "id": text(record["id"]), "question": text(record["question"]),
                    "answers": [{"text": answer, "answer_start": int(start)}
                                for answer, start in zip(texts(answers["text"]), answers["answer_start"])],
                    "is_impossible": bool(record.get("is_impossible", False)),
                }
                yield text(record["context"]), f"example {n}", question

        return _examples(questions(), f"tfds {name} {tfds_split}", self.version, split)


def read_squad_file(path: PathLike, version: str, *, mode: str) -> list[SquadExample]:
    """The questions of a file in SQuAD's layout, checked for `mode` (see `MODES`)."""
    try:
        dataset = json.loads(read_text(path))
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not JSON: {error}") from None
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise InputError(f"{path} is not a SQuAD dataset: expected a JSON object with a list 'data'")

    def questions() -> Iterator[tuple[str, str, Any]]:
        for a, article in enumerate(dataset["data"]):
            for p, paragraph in enumerate(_list(article, "paragraphs", f"data[{a}]", path)):
                where = f"data[{a}].paragraphs[{p}]"
                context = paragraph.get("context")
                if not isinstance(context, str):
                    raise InputError(f"{path} is not a SQuAD dataset: {where} has no string 'context'")
                for q, question in enumerate(_list(paragraph, "qas", where, path)):
                    yield context, f"{where}.qas[{q}]", question

    return _examples(questions(), str(path), version, mode)


def _list(parent: Any, key: str, where: str, source: PathLike) -> list:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, list):
        raise InputError(f"{source} is not a SQuAD dataset: {where} has no list {key!r}")
    return value


def _examples(questions: Iterable[tuple[str, str, Any]], source: str, version: str,
              mode: str) -> list[SquadExample]:
    """Checked examples of (context, where, question object) triples."""
    examples, seen = [], set()
    for context, where, question in questions:
        qid = question.get("id") if isinstance(question, dict) else None
        if not isinstance(qid, str):
            raise InputError(f"{source} is not a SQuAD dataset: {where} has no string 'id'")
        if qid in seen:
            raise InputError(f"{source}: question id {qid!r} appears twice (again at {where})")
        seen.add(qid)
        examples.append(_example(question, context, qid, source, version, mode))
    if not examples:
        raise InputError(f"{source} holds no questions")
    return examples


def _example(question: dict, context: str, qid: str, source: str, version: str, mode: str) -> SquadExample:
    at = f"{source}: question {qid!r}"
    if not isinstance(question.get("question"), str):
        raise InputError(f"{at} has no string 'question'")
    if "answers" not in question and mode == "predict":
        return SquadExample(qid, question["question"], context, ())
    answers = question.get("answers")
    if not isinstance(answers, list) or not all(
            isinstance(a, dict) and isinstance(a.get("text"), str) for a in answers):
        raise InputError(f"{at}: 'answers' must be a list of objects with a string 'text'")
    impossible = question.get("is_impossible", False)
    if not isinstance(impossible, bool):
        raise InputError(f"{at}: 'is_impossible' must be true or false, got {shown(impossible)}")
    if impossible and answers:
        raise InputError(f"{at} is marked is_impossible but has {len(answers)} answer(s)")
    if not answers and version == V1 and mode != "predict":
        raise InputError(f"{at} has no answer, which SQuAD 1.1 does not allow "
                         "(--config.data.version=v2.0 reads unanswerable questions)")
    span = _answer_span(answers[0], context, at) if answers and mode == "train" else None
    return SquadExample(qid, question["question"], context, tuple(a["text"] for a in answers), span)


def _answer_span(answer: dict, context: str, at: str) -> tuple[int, int]:
    """The character span of a training answer, which must be where `answer_start` says."""
    start, answer_text = answer.get("answer_start"), answer["text"]
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InputError(f"{at}: answer_start must be a non-negative integer, got {shown(start)}")
    if not answer_text.strip():
        raise InputError(f"{at}: the answer text is empty")
    found = context[start:start + len(answer_text)]
    if found != answer_text:
        raise InputError(f"{at}: the answer {shown(answer_text)} is not at answer_start {start} of the "
                         f"context, which has {shown(found)} there")
    return start, start + len(answer_text)
