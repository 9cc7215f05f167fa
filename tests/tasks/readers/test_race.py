"""RACE: the official download's files and tfds `race/*` give the same ChoiceExamples; malformed
articles are one-line errors naming the file and what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tensorflow_datasets.datasets.race import race_dataset_builder

from albert_jax.errors import InputError
from albert_jax.tasks.examples import ChoiceExample
from albert_jax.tasks.readers import RaceFilesReader, RaceTfdsReader
from tests.tasks.readers.tfds_fakes import mock_data, prepare, serve


def article(article_id: str, n_questions: int = 1, **changes) -> dict:
    record = {
        "answers": ["ABCD"[i % 4] for i in range(n_questions)],
        "options": [[f"{article_id} q{i} option {c}" for c in "abcd"] for i in range(n_questions)],
        "questions": [f"{article_id} question {i}?" if i % 2 == 0 else f"So _ is {i}." for i in range(n_questions)],
        "article": f"The article {article_id}.",
        "id": article_id,
    }
    record.update(changes)
    return record


# split -> level -> file name -> questions in it. File names sort as strings: 10 before 2.
LAYOUT = {
    "train": {"high": {"2.txt": 2, "10.txt": 1}, "middle": {"1.txt": 3}},
    "dev": {"high": {"5.txt": 1}, "middle": {"7.txt": 1}},
    "test": {"high": {"9.txt": 4}, "middle": {"3.txt": 1}},
}


def write_race(root: Path) -> Path:
    for split, levels in LAYOUT.items():
        for level, files in levels.items():
            folder = root / "RACE" / split / level
            folder.mkdir(parents=True)
            for name, questions in files.items():
                (folder / name).write_text(json.dumps(article(level + name, questions)))
    return root


@pytest.fixture(scope="module")
def race_dir(tmp_path_factory) -> Path:
    return write_race(tmp_path_factory.mktemp("race"))


def test_one_example_per_question_in_sorted_file_order(race_dir):
    examples = RaceFilesReader(race_dir / "RACE").read("train")
    assert all(type(e) is ChoiceExample for e in examples)
    assert [e.guid for e in examples] == [
        "high10.txt-0", "high2.txt-0", "high2.txt-1", "middle1.txt-0", "middle1.txt-1", "middle1.txt-2",
    ]
    assert examples[2] == ChoiceExample(
        guid="high2.txt-1",
        article="The article high2.txt.",
        question="So _ is 1.",  # the blank stays: filling it is the features' business
        options=tuple(f"high2.txt q1 option {c}" for c in "abcd"),
        label=1,
    )
    assert [e.label for e in examples[3:]] == [0, 1, 2]


def test_levels_and_the_folder_above_race(race_dir):
    # The original scripts take the folder that holds RACE/; either works.
    assert RaceFilesReader(race_dir).read("dev") == RaceFilesReader(race_dir / "RACE").read("dev")
    assert [e.guid for e in RaceFilesReader(race_dir, level="middle").read("test")] == ["middle3.txt-0"]
    assert len(RaceFilesReader(race_dir, level="high").read("test")) == 4
    reader = RaceFilesReader(race_dir)
    assert reader.labels == ("A", "B", "C", "D") and reader.splits == ("train", "dev", "test")


def test_a_file_of_several_articles(tmp_path):
    folder = tmp_path / "train" / "high"
    folder.mkdir(parents=True)
    (folder / "all.txt").write_text(json.dumps(article("high1.txt")) + "\n\n" + json.dumps(article("high2.txt")) + "\n")
    examples = RaceFilesReader(tmp_path, level="high").read("train")
    assert [e.guid for e in examples] == ["high1.txt-0", "high2.txt-0"]


@pytest.fixture(scope="module")
def tfds_race_dir(tmp_path_factory, race_dir) -> Path:
    """race/high and race/middle prepared by tfds' own RACE builder from the files above."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for level in ("high", "middle"):
        prepare(race_dataset_builder.Builder, "race", data_dir, race_dir, config=level)
    return data_dir


@pytest.mark.parametrize("level", ["all", "high", "middle"])
@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_tfds_gives_the_same_examples_as_the_files(race_dir, tfds_race_dir, level, split):
    from_tfds = RaceTfdsReader(level=level, data_dir=tfds_race_dir).read(split)
    assert from_tfds == RaceFilesReader(race_dir, level=level).read(split)


def test_tfds_record_checked_like_a_file():
    record = {
        "example_id": "high1.txt", "article": "A.", "questions": ["Q?"], "answers": ["B"],
        "options": [["a", "b", "c"]],
    }
    with mock_data(as_data_source_fn=serve({"dev": [record]})), pytest.raises(InputError) as error:
        RaceTfdsReader(level="high").read("dev")
    assert str(error.value) == "tfds race/high dev example 0: question 0 has 3 options; RACE has 4"


# ---------------------------------------------------------------------------------------------
# Bad input


def bad_file(tmp_path: Path, content: str) -> str:
    folder = tmp_path / "dev" / "middle"
    folder.mkdir(parents=True)
    (folder / "1.txt").write_text(content)
    with pytest.raises(InputError) as error:
        RaceFilesReader(tmp_path, level="middle").read("dev")
    assert "\n" not in str(error.value)
    return str(error.value).replace(str(folder / "1.txt"), "FILE")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([1, 2], "FILE:1: expected a JSON object, found list"),
        (article("m1", answers=None), "FILE:1: 'questions', 'options' and 'answers' must be lists"),
        ({k: v for k, v in article("m1").items() if k != "answers"}, "FILE:1: missing key 'answers'"),
        ({k: v for k, v in article("m1").items() if k != "id"}, "FILE:1: missing key 'id'"),
        (article("m1", options=[["a", "b", "c", "d", "e"]]), "FILE:1: question 0 has 5 options; RACE has 4"),
        (article("m1", options=["abcd"]), "FILE:1: question 0 has 'abcd' options; RACE has 4"),
        (article("m1", answers=["E"]), "FILE:1: question 0 has answer 'E', not one of A, B, C, D"),
        (article("m1", answers=[0]), "FILE:1: question 0 has answer 0, not one of A, B, C, D"),
        (article("m1", 2, answers=["A"]), "FILE:1: 2 questions, 2 option lists and 1 answers; they must be as many"),
        (article("m1", article=None), "FILE:1: 'id' and 'article' must be strings"),
        (article("m1", questions=[7]), "FILE:1: question 0 and its options must be strings"),
    ],
)
def test_malformed_article(tmp_path, record, message):
    assert bad_file(tmp_path, json.dumps(record)) == message


def test_not_json(tmp_path):
    assert bad_file(tmp_path, '{"id": "m1", "article": ') == "FILE:1: not JSON (Expecting value)"


def test_an_article_read_twice(tmp_path):
    folder = tmp_path / "train" / "high"
    folder.mkdir(parents=True)
    (folder / "1.txt").write_text(json.dumps(article("high1.txt")))
    (folder / "all.txt").write_text(json.dumps(article("high1.txt")))
    with pytest.raises(InputError, match=r"all.txt:1: article id 'high1.txt' was read before, at .*1.txt:1"):
        RaceFilesReader(tmp_path, level="high").read("train")


def test_missing_folders_and_bad_level(tmp_path):
    with pytest.raises(InputError, match=r"RACE: no folder '.*dev/high' \(the layout is RACE/dev/high/\*.txt\)"):
        RaceFilesReader(tmp_path).read("dev")
    (tmp_path / "dev" / "high").mkdir(parents=True)
    with pytest.raises(InputError, match=r"RACE: no .txt files in '.*dev/high'"):
        RaceFilesReader(tmp_path).read("dev")
    with pytest.raises(InputError, match="RACE level 'college' is not one of all, high, middle"):
        RaceFilesReader(tmp_path, level="college")
    with pytest.raises(InputError, match="has no split 'validation'"):
        RaceTfdsReader().read("validation")
