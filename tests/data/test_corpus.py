"""Corpus sources: BERT-format text files, tfds datasets by name, the built-in corpus, and the
sentence splitter."""

from __future__ import annotations

import ast
import gc
import gzip
import hashlib
import itertools
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from albert_jax.data.corpus import BuiltinCorpus, TextFiles, TfdsText, text_files
from albert_jax.data.corpus.splitter import split_sentences
from albert_jax.errors import InputError

# ---------------------------------------------------------------------------------------------
# Sentence splitting


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("Use e.g. this. Or i.e. That.", ["Use e.g. this.", "Or i.e. That."]),
        (
            "J. R. R. Tolkien wrote it. The U.S. Army read it.",
            ["J. R. R. Tolkien wrote it.", "The U.S. Army read it."],
        ),
        ("Pi is 3.14 here. Version 2.0 shipped.", ["Pi is 3.14 here.", "Version 2.0 shipped."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("It ended (as planned.) Next came more.", ["It ended (as planned.)", "Next came more."]),
        ("lower case after. does not split", ["lower case after. does not split"]),
        ("In 1999. 2000 came next.", ["In 1999.", "2000 came next."]),
        ("Es war gut. Über alles. Ärger folgt.", ["Es war gut.", "Über alles.", "Ärger folgt."]),
        ("它很好。我也是！真的？", ["它很好。", "我也是！", "真的？"]),
        ("First line\nSecond line.\n\n  \nThird", ["First line", "Second line.", "Third"]),
        ("", []),
        ("   ", []),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


# ---------------------------------------------------------------------------------------------
# Text files


def test_text_files_documents_are_separated_by_blank_lines(tmp_path):
    (tmp_path / "a.txt").write_text("One.\nTwo.\n\n\n  \t\nThree.\n\nFour.\n  Five.  \n")
    (tmp_path / "b.txt").write_text("Six.\n")  # no trailing blank line: the file still ends it
    assert list(TextFiles([tmp_path / "a.txt", tmp_path / "b.txt"])) == [
        ["One.", "Two."],
        ["Three."],
        ["Four.", "Five."],
        ["Six."],
    ]


def test_text_files_globs_and_gzip(tmp_path):
    (tmp_path / "part-2.txt").write_text("Second.\n")
    (tmp_path / "part-1.txt.gz").write_bytes(gzip.compress(b"First.\n\nAlso first.\n"))
    (tmp_path / "other.md").write_text("Not matched.\n")
    corpus = TextFiles([str(tmp_path / "part-*")])
    assert [path.name for path in corpus.files] == ["part-1.txt.gz", "part-2.txt"]
    assert list(corpus) == [["First."], ["Also first."], ["Second."]]


def test_text_files_skip_lines_that_are_not_utf8(tmp_path, caplog):
    (tmp_path / "bad.txt").write_bytes(b"Good one.\n\xff\xfe broken\nGood two.\n\nLast.\n")
    corpus = TextFiles([tmp_path / "bad.txt"])
    with caplog.at_level(logging.WARNING):
        assert list(corpus) == [["Good one.", "Good two."], ["Last."]]
    assert corpus.skipped_lines == 1
    assert "bad.txt: skipped 1 line(s) that are not UTF-8" in caplog.text


def test_text_files_empty_file_and_file_without_blank_lines(tmp_path, monkeypatch):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n\n \n")
    assert list(TextFiles([tmp_path / "empty.txt", tmp_path / "blank.txt"])) == []
    (tmp_path / "one.txt").write_text("".join(f"Sentence {i}.\n" for i in range(7)))
    monkeypatch.setattr(text_files, "MAX_DOCUMENT_SENTENCES", 3)
    documents = list(TextFiles([tmp_path / "one.txt"]))
    assert [len(d) for d in documents] == [3, 3, 1]
    assert sum(documents, []) == [f"Sentence {i}." for i in range(7)]


def test_text_files_bad_input(tmp_path):
    with pytest.raises(InputError, match="no input files"):
        TextFiles([])
    with pytest.raises(InputError, match="no file matches .*nothing-here"):
        TextFiles([str(tmp_path / "nothing-here*")])
    with pytest.raises(InputError, match="is not a file"):
        TextFiles([tmp_path])
    (tmp_path / "broken.txt.gz").write_bytes(b"\x1f\x8b\x08\x00corrupt")
    with pytest.raises(InputError, match="cannot read .*broken.txt.gz"):
        list(TextFiles([tmp_path / "broken.txt.gz"]))


def test_text_files_identity_follows_the_files(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("One.\n")
    before = TextFiles([path]).identity
    assert json.loads(json.dumps(before)) == before
    path.write_text("One more.\n")
    assert TextFiles([path]).identity != before


# ---------------------------------------------------------------------------------------------
# tfds datasets, built here (nothing can be downloaded in tests)


# tfds 4.9.10 looks up the source folder of a builder defined in a package through the
# `importlib_resources` backport, which it installs only on Python < 3.9. These builders have no
# files beside them (no checksums), so they declare no code path and skip the lookup.


class AlbertTestProse(tfds.core.GeneratorBasedBuilder):
    """Three documents, as a text feature, a pre-split feature, and noise around them."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None
    TEXTS = [
        "First document. Its second sentence!\nA new paragraph starts here.",
        "Only one sentence here",
        "Dr. Who arrived. He left.",
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "title": tfds.features.Text(),
                    "text": tfds.features.Text(),
                    "sentences": tfds.features.Sequence(tfds.features.Text()),
                    "label": np.int32,
                }
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(), "test": self._generate_examples()}

    def _generate_examples(self):
        for i, text in enumerate(self.TEXTS):
            sentences = [f"S{i}a.", "", f"S{i}b."]
            yield i, {"title": f"T{i}", "text": text, "sentences": sentences, "label": i}


class AlbertTestNoText(tfds.core.GeneratorBasedBuilder):
    VERSION = tfds.core.Version("1.0.0")
    code_path = None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {"a": tfds.features.Text(), "b": tfds.features.Text()}
            ),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        yield 0, {"a": "x", "b": "y"}


@pytest.fixture(scope="module", params=["array_record", "tfrecord"])
def tfds_data_dir(request, tmp_path_factory):
    if request.param == "tfrecord":
        pytest.importorskip("tensorflow")  # TFRecord datasets need TensorFlow to read
    data_dir = tmp_path_factory.mktemp(f"tfds_{request.param}")
    for builder in (AlbertTestProse, AlbertTestNoText):
        builder(data_dir=str(data_dir), file_format=request.param).download_and_prepare()
    return data_dir


def _sorted(documents):
    # tfds shuffles examples when it writes them; the order is fixed, but not ours to choose.
    return sorted(documents)


def test_tfds_text_feature_is_split_into_sentences(tfds_data_dir):
    corpus = TfdsText("albert_test_prose", data_dir=tfds_data_dir)
    assert corpus.feature == "text"  # preferred over "title"
    assert _sorted(corpus) == [
        ["Dr. Who arrived.", "He left."],
        ["First document.", "Its second sentence!", "A new paragraph starts here."],
        ["Only one sentence here"],
    ]
    assert list(corpus) == list(corpus)
    assert corpus.identity["num_examples"] == 3 and corpus.identity["split"] == "train"


def test_tfds_sequence_feature_is_taken_as_sentences(tfds_data_dir):
    corpus = TfdsText(
        "albert_test_prose", data_dir=tfds_data_dir, split="test", feature="sentences"
    )
    assert _sorted(corpus) == [["S0a.", "S0b."], ["S1a.", "S1b."], ["S2a.", "S2b."]]


def test_tfds_bad_input(tfds_data_dir, tmp_path):
    with pytest.raises(InputError, match="'albert_test_nothing'.*not found") as error:
        TfdsText("albert_test_nothing", data_dir=tfds_data_dir)
    assert "\n" not in str(error.value)  # one line, not tfds' catalogue
    with pytest.raises(InputError, match="not prepared .* tfds build albert_test_prose"):
        TfdsText("albert_test_prose", data_dir=tmp_path)
    with pytest.raises(InputError, match="has no split 'validation'"):
        TfdsText("albert_test_prose", data_dir=tfds_data_dir, split="validation")
    with pytest.raises(InputError, match="no text feature 'label'"):
        TfdsText("albert_test_prose", data_dir=tfds_data_dir, feature="label")
    with pytest.raises(InputError, match=r"choose its text feature among \['a', 'b'\]"):
        TfdsText("albert_test_no_text", data_dir=tfds_data_dir)


# ---------------------------------------------------------------------------------------------
# The built-in corpus


def test_builtin_corpus_is_prose_of_useful_size(builtin_documents):
    num_chars = sum(len(sentence) + 1 for document in builtin_documents for sentence in document)
    assert num_chars > 1_500_000  # ~1.9 MB on CPython 3.11
    assert len(builtin_documents) > 1000
    multi_sentence = sum(len(document) >= 2 for document in builtin_documents)
    assert multi_sentence > 0.6 * len(builtin_documents)  # sentence-order pairs need them
    all_sentences = [sentence for document in builtin_documents for sentence in document]
    assert all(sentence and sentence == sentence.strip() for sentence in all_sentences)
    assert not any(sentence.startswith((">>>", "...")) for sentence in all_sentences)
    assert not any("\n" in sentence for sentence in all_sentences)
    # Each source is present: a stdlib docstring, a C module docstring, a pydoc topic.
    text = "\n".join(all_sentences)
    assert "Return the cosine of x (measured in radians)." in text  # math, a C module
    assert "Dictionary that remembers insertion order" in text  # collections.OrderedDict
    assert 'The "for" statement is used to iterate over the elements of a sequence' in text


def test_builtin_corpus_is_deterministic_and_quiet(builtin_documents):
    """A fresh process reads the same documents, prints nothing, and imports no module with
    side effects."""
    script = (
        "import hashlib, json, sys\n"
        "from albert_jax.data.corpus import BuiltinCorpus\n"
        "digest = hashlib.sha256(json.dumps(list(BuiltinCorpus())).encode()).hexdigest()\n"
        "risky = ('antigravity', 'this', 'tkinter', 'idlelib', 'turtle')\n"
        "loaded = [m for m in risky if m in sys.modules]\n"
        "sys.stderr.write(json.dumps([digest, loaded]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout == ""
    digest, loaded = json.loads(result.stderr.strip().splitlines()[-1])
    assert loaded == []
    assert digest == hashlib.sha256(json.dumps(builtin_documents).encode()).hexdigest()
    assert BuiltinCorpus().identity["python"] == sys.version


def test_builtin_corpus_reads_while_the_collector_runs_finalizers_that_parse(builtin_documents):
    """Python 3.11.7's `ast.parse` fails when a collection during it runs a finalizer that parses
    too, as formatting a traceback does: CI hit it after orbax left futures with unretrieved
    errors behind."""

    class ParsesWhenCollected:
        def __init__(self):
            self.cycle = self  # only the collector frees it

        def __del__(self):
            ast.parse("a + b")

    threshold = gc.get_threshold()
    gc.set_threshold(50)  # collect often, so that one falls inside a parse
    try:
        documents = []
        for document in itertools.islice(BuiltinCorpus(), 300):
            ParsesWhenCollected()
            documents.append(document)
    finally:
        gc.set_threshold(*threshold)
    assert documents == builtin_documents[:300]
