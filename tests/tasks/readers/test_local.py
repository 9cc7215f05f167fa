"""Local classification and regression files: TSV, CSV and JSONL, the label set from the
training file, and one-line errors naming the file, line and column."""

from __future__ import annotations

import json

import pytest

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TextExample
from albert_jax.tasks.readers import LocalTextReader, label_set

COLUMNS = {"text_column": "text", "label_column": "label"}


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def jsonl(path, records):
    return write(path, [json.dumps(record) for record in records])


def test_the_three_formats_give_the_same_examples(tmp_path):
    tsv = write(tmp_path / "train.tsv", ["id\ttext\tlabel", '1\tA "quoted, text\tpos', "2\tplain\tneg"])
    csv = write(tmp_path / "train.csv", ["id,text,label", '1,"A ""quoted, text",pos', "2,plain,neg"])
    records = [{"text": 'A "quoted, text', "label": "pos", "id": 1}, {"text": "plain", "label": "neg"}]
    expected = [TextExample("train-0", 'A "quoted, text', None, "pos"), TextExample("train-1", "plain", None, "neg")]
    for path in (tsv, csv, jsonl(tmp_path / "train.jsonl", records)):
        reader = LocalTextReader(train_file=path, **COLUMNS)
        assert reader.read("train") == expected, path
        assert reader.labels == ("neg", "pos")
        assert reader.splits == ("train",)


def test_pairs_dev_and_unlabelled_test(tmp_path):
    train = write(tmp_path / "train.csv", ["q,a,label", "Why?,Because.,yes", "Who?,Me.,no", "How?,So.,yes"])
    dev = write(tmp_path / "dev.csv", ["label,a,q", "no,Him.,Who?"])  # any column order
    test = write(tmp_path / "test.csv", ["q,a", "When?,Now."])  # no label column: labels None
    reader = LocalTextReader(
        train_file=train, dev_file=dev, test_file=test, text_column="q", text_pair_column="a", label_column="label"
    )
    assert reader.splits == ("train", "dev", "test")
    assert reader.labels == ("no", "yes")
    assert reader.read("dev") == [TextExample("dev-0", "Who?", "Him.", "no")]
    assert reader.read("test") == [TextExample("test-0", "When?", "Now.", None)]
    assert [e.label for e in reader.read("train")] == ["yes", "no", "yes"]


def test_label_order_is_numeric_for_integers_else_by_string():
    assert label_set(["10", "2", "0", "1", "2"]) == ("0", "1", "2", "10")
    assert label_set(["-1", "+3", "1"]) == ("-1", "1", "+3")
    assert label_set(["b", "a", "B", "10", "9"]) == ("10", "9", "B", "a", "b")


def test_json_integer_labels_are_names(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 10}, {"text": "b", "label": 2}])
    reader = LocalTextReader(train_file=train, **COLUMNS)
    assert reader.labels == ("2", "10")
    assert [e.label for e in reader.read("train")] == ["10", "2"]


def test_regression(tmp_path):
    train = jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": 1}, {"text": "b", "label": "2.5"}])
    dev = write(tmp_path / "dev.tsv", ["text\tlabel", "c\t-0.75"])
    reader = LocalTextReader(train_file=train, dev_file=dev, task_type="regression", **COLUMNS)
    assert reader.labels is None
    assert [e.label for e in reader.read("train")] == [1.0, 2.5]
    assert reader.read("dev") == [TextExample("dev-0", "c", None, -0.75)]


def test_given_labels_replace_the_training_file(tmp_path):
    test = write(tmp_path / "test.tsv", ["text\tlabel", "x\tb", "y\ta"])
    reader = LocalTextReader(test_file=test, labels=["b", "a"], **COLUMNS)
    assert LocalTextReader(test_file=test, labels=[1, 0], **COLUMNS).labels == ("1", "0")
    assert reader.labels == ("b", "a")
    assert [e.label for e in reader.read("test")] == ["b", "a"]


# ---------------------------------------------------------------------------------------------
# Bad input: every error is one line naming the file (and line, column or label) at fault


def error_of(reader, split) -> str:
    with pytest.raises(InputError) as error:
        reader.read(split)
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("suffix", [".tsv", ".csv", ".jsonl"])
def test_missing_column(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    if suffix == ".jsonl":
        jsonl(path, [{"sentence": "a", "label": "x"}])
    else:
        sep = "\t" if suffix == ".tsv" else ","
        write(path, [f"sentence{sep}label", f"a{sep}x"])
    message = error_of(LocalTextReader(train_file=path, **COLUMNS), "train")
    assert message == f"{path}:1: no column 'text'; the columns are 'sentence', 'label'"


def test_missing_pair_column_and_label_column_in_dev(tmp_path):
    train = write(tmp_path / "train.tsv", ["text\tlabel", "a\tx"])
    dev = write(tmp_path / "dev.tsv", ["text\tgold", "a\tx"])
    reader = LocalTextReader(train_file=train, dev_file=dev, **COLUMNS)
    assert error_of(reader, "dev") == f"{dev}:1: no column 'label'; the columns are 'text', 'gold'"
    reader = LocalTextReader(train_file=train, text_pair_column="pair", **COLUMNS)
    assert "no column 'pair'" in error_of(reader, "train")


def test_dev_label_absent_from_training(tmp_path):
    train = write(tmp_path / "train.csv", ["text,label", "a,pos", "b,neg"])
    dev = write(tmp_path / "dev.csv", ["text,label", "a,pos", "c,neutral"])
    message = error_of(LocalTextReader(train_file=train, dev_file=dev, **COLUMNS), "dev")
    assert message == f"{dev}:3: label 'neutral' is not one of the labels of the training file: neg, pos"
    reader = LocalTextReader(dev_file=dev, labels=["pos"], **COLUMNS)
    assert error_of(reader, "dev") == f"{dev}:3: label 'neutral' is not one of the given labels: pos"


@pytest.mark.parametrize("lines", [[], ["text\tlabel"], ["", "  "]])
def test_empty_file(tmp_path, lines):
    path = write(tmp_path / "train.tsv", lines)
    assert error_of(LocalTextReader(train_file=path, **COLUMNS), "train") == f"{path}: no examples"


def test_empty_jsonl(tmp_path):
    path = write(tmp_path / "train.jsonl", ["", " "])
    assert error_of(LocalTextReader(train_file=path, **COLUMNS), "train") == f"{path}: no examples"


@pytest.mark.parametrize("value", ["high", "", "nan", "inf"])
def test_non_numeric_regression_label(tmp_path, value):
    path = write(tmp_path / "train.tsv", ["text\tlabel", "a\t1.5", f"b\t{value}"])
    reader = LocalTextReader(train_file=path, task_type="regression", **COLUMNS)
    assert error_of(reader, "train") == f"{path}:3: label {value!r} in column 'label' is not a number"


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}])
def test_non_numeric_regression_label_in_json(tmp_path, value):
    path = jsonl(tmp_path / "train.jsonl", [{"text": "a", "label": value}])
    reader = LocalTextReader(train_file=path, task_type="regression", **COLUMNS)
    assert error_of(reader, "train").startswith(f"{path}:1: label ")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["text\tlabel", "a\tx\textra"], ":2: 3 fields, the header has 2"),
        (["text\tlabel", "a"], ":2: 1 fields, the header has 2"),
        (["text\tlabel", "a\t "], ":2: empty label in column 'label'"),
    ],
)
def test_bad_rows(tmp_path, lines, message):
    path = write(tmp_path / "train.tsv", lines)
    assert error_of(LocalTextReader(train_file=path, **COLUMNS), "train") == f"{path}{message}"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", ":2: not JSON (Expecting property name enclosed in double quotes)"),
        ("[1, 2]", ":2: expected a JSON object, found list"),
        ('{"text": 3, "label": "x"}', ":2: column 'text' holds 3, not text"),
        ('{"text": "a", "label": 1.5}', ":2: label 1.5 in column 'label' is not a string or integer"),
        ('{"label": "x"}', ":2: no column 'text'; the columns are 'label'"),
    ],
)
def test_bad_json_lines(tmp_path, line, message):
    path = write(tmp_path / "train.jsonl", ['{"text": "fine", "label": "x"}', line])
    assert error_of(LocalTextReader(train_file=path, **COLUMNS), "train") == f"{path}{message}"


def test_bad_csv(tmp_path):
    # An unclosed quote swallows the rest of the file into one field: the row is then too long.
    path = write(tmp_path / "train.csv", ["text,label", '"b,x', "c,y", "d,z"])
    reader = LocalTextReader(train_file=path, **COLUMNS)
    assert error_of(reader, "train") == f"{path}:4: 1 fields, the header has 2"
    path = write(tmp_path / "train.csv", ["text,label", "a" * 200_000 + ",x"])
    reader = LocalTextReader(train_file=path, **COLUMNS)
    assert error_of(reader, "train") == f"{path}:2: field larger than field limit (131072)"


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="no data files given"):
        LocalTextReader(**COLUMNS)
    with pytest.raises(InputError, match=r"unknown format; use one of .tsv, .csv, .jsonl"):
        LocalTextReader(train_file=tmp_path / "train.txt", **COLUMNS)
    with pytest.raises(InputError, match="task_type 'ranking' is not one of classification, regression"):
        LocalTextReader(train_file=tmp_path / "train.tsv", task_type="ranking", **COLUMNS)
    with pytest.raises(InputError, match="labels are class names: a regression task has none"):
        LocalTextReader(train_file=tmp_path / "train.tsv", task_type="regression", labels=["a"], **COLUMNS)
    with pytest.raises(InputError, match="classification task needs train_file"):
        LocalTextReader(dev_file=tmp_path / "dev.tsv", **COLUMNS)
    with pytest.raises(InputError, match=r"no file '.*missing.tsv'"):
        LocalTextReader(train_file=tmp_path / "missing.tsv", **COLUMNS).read("train")
    reader = LocalTextReader(train_file=tmp_path / "train.tsv", **COLUMNS)
    with pytest.raises(InputError, match="local classification files has no split 'dev'; it has train"):
        reader.read("dev")
