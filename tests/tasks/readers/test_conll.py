"""CoNLL-style tagging files and tfds `conll2003`: words and tag names, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow_datasets.text.conll2003 import conll2003

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TaggedExample
from albert_jax.tasks.readers import ConllFilesReader, ConllTfdsReader
from tests.tasks.readers.tfds_fakes import mock_data, prepare, serve

# CoNLL-2003 as distributed: word POS chunk NER, -DOCSTART- between documents.
TRAIN = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
"""
VALID = """-DOCSTART- -X- -X- O

CRICKET NNP B-NP O
- : O O
LEICESTERSHIRE NNP B-NP B-ORG

"""
TEST = """SOCCER NN B-NP O
- : O O
JAPAN NNP B-NP B-LOC
"""
TRAIN_SENTENCES = [
    (("EU", "rejects", "German", "call", "."), ("B-ORG", "O", "B-MISC", "O", "O")),
    (("Peter", "Blackburn"), ("B-PER", "I-PER")),
    (("BRUSSELS",), ("B-LOC",)),
]


@pytest.fixture(scope="module")
def conll_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("conll")
    for name, content in (("train.txt", TRAIN), ("valid.txt", VALID), ("test.txt", TEST)):
        (root / name).write_text(content)
    return root


def files_reader(root: Path, **kwargs) -> ConllFilesReader:
    return ConllFilesReader(
        train_file=root / "train.txt", dev_file=root / "valid.txt", test_file=root / "test.txt", **kwargs
    )


def test_sentences_words_and_last_column_tags(conll_dir):
    reader = files_reader(conll_dir)
    train = reader.read("train")
    assert all(type(example) is TaggedExample for example in train)
    assert [(e.words, e.tags) for e in train] == TRAIN_SENTENCES
    assert [e.guid for e in train] == ["train-0", "train-1", "train-2"]
    assert reader.labels == ("B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER", "O")
    assert reader.read("dev") == [TaggedExample("dev-0", ("CRICKET", "-", "LEICESTERSHIRE"), ("O", "O", "B-ORG"))]
    assert reader.read("test")[0].tags == ("O", "O", "B-LOC")


def test_two_columns_tabs_and_untagged_test(tmp_path):
    (tmp_path / "train.tsv").write_text("Paris\tB-LOC\nis\tO\n\n\n\nnice\tO\n")
    (tmp_path / "test.txt").write_text("Where\nis\n\nParis\n")
    reader = ConllFilesReader(train_file=tmp_path / "train.tsv", test_file=tmp_path / "test.txt")
    assert [(e.words, e.tags) for e in reader.read("train")] == [(("Paris", "is"), ("B-LOC", "O")), (("nice",), ("O",))]
    assert reader.read("test") == [
        TaggedExample("test-0", ("Where", "is"), None),
        TaggedExample("test-1", ("Paris",), None),
    ]
    assert reader.labels == ("B-LOC", "O")


def test_given_labels(tmp_path):
    (tmp_path / "test.txt").write_text("Paris B-LOC\n")
    reader = ConllFilesReader(test_file=tmp_path / "test.txt", labels=["O", "B-LOC"])
    assert reader.labels == ("O", "B-LOC") and reader.splits == ("test",)
    assert reader.read("test")[0].tags == ("B-LOC",)


@pytest.fixture(scope="module")
def tfds_conll_dir(tmp_path_factory, conll_dir) -> Path:
    """conll2003 prepared by tfds' own builder from the files above."""
    data_dir = tmp_path_factory.mktemp("tfds")
    prepare(conll2003.Conll2003, "conll2003", data_dir, conll_dir)
    return data_dir


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_tfds_gives_the_sentences_of_the_files(conll_dir, tfds_conll_dir, split):
    from_tfds = ConllTfdsReader(data_dir=tfds_conll_dir).read(split)
    from_files = files_reader(conll_dir).read(split)
    assert [e.guid for e in from_tfds] == [f"{split}-{n}" for n in range(len(from_files))]
    # tfds stores sentences in a hashed order.
    assert sorted((e.words, e.tags) for e in from_tfds) == sorted((e.words, e.tags) for e in from_files)


def test_tfds_tag_ids_become_names():
    record = {"tokens": [b"EU", b"rejects", b"Peter"], "pos": [0, 0, 0], "chunks": [0, 0, 0], "ner": [3, 0, 1]}
    with mock_data(as_data_source_fn=serve({"dev": [record]})):
        reader = ConllTfdsReader()
        assert reader.labels == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
        assert reader.read("dev") == [TaggedExample("dev-0", ("EU", "rejects", "Peter"), ("B-ORG", "O", "B-PER"))]


def test_tfds_bad_records_and_features():
    record = {"tokens": [b"EU", b"rejects"], "pos": [0], "chunks": [0], "ner": [3]}
    with mock_data(as_data_source_fn=serve({"train": [record]})):
        with pytest.raises(InputError, match=r"^tfds conll2003 train example 0: 2 words but 1 tags$"):
            ConllTfdsReader().read("train")
        with pytest.raises(InputError, match="tfds conll2003 has no feature 'tags'; it has tokens, pos, chunks, ner"):
            ConllTfdsReader(tags_feature="tags").read("train")
        with pytest.raises(InputError, match="feature 'tokens' is not a sequence of class labels"):
            ConllTfdsReader(tags_feature="tokens").read("train")


# ---------------------------------------------------------------------------------------------
# Bad input


def error_of(reader, split) -> str:
    with pytest.raises(InputError) as error:
        reader.read(split)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_a_line_with_the_wrong_number_of_fields(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects O\n")
    assert error_of(ConllFilesReader(train_file=path), "train") == (
        f"{path}:4: 2 fields; the file's word lines have 3 (as line 3)"
    )


def test_tag_absent_from_training(tmp_path):
    (tmp_path / "train.txt").write_text("EU B-ORG\n")
    (tmp_path / "dev.txt").write_text("EU B-ORG\n\nParis B-LOC\n")
    reader = ConllFilesReader(train_file=tmp_path / "train.txt", dev_file=tmp_path / "dev.txt")
    assert error_of(reader, "dev") == f"{tmp_path / 'dev.txt'}:3: tag 'B-LOC' is not in the tags of the training file"
    reader = ConllFilesReader(dev_file=tmp_path / "dev.txt", labels=["B-ORG", "O"])
    assert error_of(reader, "dev") == f"{tmp_path / 'dev.txt'}:3: tag 'B-LOC' is not in the given labels"


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- -X- -X- O\n\n"])
def test_no_sentences(tmp_path, content):
    (tmp_path / "train.txt").write_text(content)
    assert error_of(ConllFilesReader(train_file=tmp_path / "train.txt"), "train").endswith("train.txt: no sentences")


def test_untagged_training_file(tmp_path):
    (tmp_path / "train.txt").write_text("EU\nrejects\n")
    message = error_of(ConllFilesReader(train_file=tmp_path / "train.txt"), "train")
    assert message.endswith("train.txt: one field per line, so no tags; the tag must be the last field")


def test_bad_arguments(tmp_path):
    with pytest.raises(InputError, match="no data files given"):
        ConllFilesReader()
    with pytest.raises(InputError, match="tagging task needs train_file"):
        ConllFilesReader(dev_file=tmp_path / "dev.txt")
    with pytest.raises(InputError, match=r"no file '.*nothing.txt'"):
        ConllFilesReader(train_file=tmp_path / "nothing.txt").read("train")
