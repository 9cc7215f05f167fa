"""`prepare` and `load_documents`: faithful records, held-out split, workers, resumption,
idempotence, refusals, and reading without TensorFlow."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from albert_jax.data.corpus import BuiltinCorpus, Corpus, Document, sentences
from albert_jax.data.documents import EVAL_SPLIT, SPLITS, TRAIN_SPLIT, load_documents
from albert_jax.data.prepare import _held_out, prepare
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError
from tests.without_tensorflow import run_without_tensorflow


class ListCorpus(Corpus):
    """Documents from a list; `fail_after` makes iteration die there, like a killed run."""

    def __init__(self, documents: list[Document], fail_after: int | None = None) -> None:
        self.documents = documents
        self.fail_after = fail_after

    @property
    def identity(self) -> dict[str, Any]:
        return {"source": "list", "size": len(self.documents)}

    def __iter__(self) -> Iterator[Document]:
        for index, document in enumerate(self.documents):
            if index == self.fail_after:
                raise KeyboardInterrupt
            yield document


def _records(directory, split=TRAIN_SPLIT) -> list[tuple[list[int], list[int]]]:
    return [
        (record["token_ids"].tolist(), record["sentence_lengths"].tolist())
        for record in load_documents(directory, split)
    ]


def _expected(documents, tokenizer, eval_fraction=0.01) -> dict[str, list]:
    """What prepare must store, worked out document by document."""
    expected = {split: [] for split in SPLITS}
    for document in documents:
        sentences = [ids for ids in map(tokenizer.encode, document) if ids]
        if sentences:
            split = EVAL_SPLIT if _held_out(document, eval_fraction) else TRAIN_SPLIT
            expected[split].append((sum(sentences, []), [len(s) for s in sentences]))
    return expected


@pytest.fixture(scope="module")
def small_documents(builtin_documents) -> list[Document]:
    return builtin_documents[:300]


def test_prepared_builtin_corpus_holds_every_document_tokenized(
    tiny_prepared_dir, tiny_tokenizer, builtin_documents
):
    expected = _expected(builtin_documents, tiny_tokenizer)
    for split in SPLITS:
        assert _records(tiny_prepared_dir, split) == expected[split]
    held_out = len(expected[EVAL_SPLIT]) / len(builtin_documents)
    assert 0.002 < held_out < 0.03  # eval_fraction 0.01 of ~2000 documents


def test_records_are_int32_and_metadata_describes_them(tiny_prepared_dir, tiny_tokenizer):
    source = load_documents(tiny_prepared_dir, TRAIN_SPLIT, tiny_tokenizer)
    record = source[0]
    assert set(record) == {"token_ids", "sentence_lengths"}
    assert record["token_ids"].dtype == np.int32 and record["sentence_lengths"].dtype == np.int32
    metadata = source.metadata
    assert metadata["tokenizer_fingerprint"] == tiny_tokenizer.fingerprint
    assert metadata["tokenizer_vocab_size"] == tiny_tokenizer.vocab_size
    assert metadata["source"] == BuiltinCorpus().identity
    assert metadata["documents"][TRAIN_SPLIT] == len(source)
    assert metadata["tokens"][TRAIN_SPLIT] == sum(len(r["token_ids"]) for r in source)
    assert (source[-1]["token_ids"] == source[len(source) - 1]["token_ids"]).all()
    with pytest.raises(IndexError):
        source[len(source)]


def test_source_pickles_and_feeds_grain(tiny_prepared_dir):
    grain = pytest.importorskip("grain")
    source = load_documents(tiny_prepared_dir)
    copy = pickle.loads(pickle.dumps(source))
    assert len(copy) == len(source)
    assert (copy[7]["token_ids"] == source[7]["token_ids"]).all()
    batch = source.__getitems__([3, 1])
    assert (batch[0]["token_ids"] == source[3]["token_ids"]).all()
    dataset = grain.MapDataset.source(source)
    assert (dataset[5]["token_ids"] == source[5]["token_ids"]).all()


def test_workers_and_shards_do_not_change_the_records(tmp_path, tiny_tokenizer, small_documents):
    corpus = ListCorpus(small_documents)
    prepare(corpus, tiny_tokenizer, tmp_path / "inline", num_workers=0, progress=False)
    # Small chunks and shards: many tasks in flight, results and shards in several pieces.
    prepare(
        corpus,
        tiny_tokenizer,
        tmp_path / "parallel",
        num_workers=2,
        chunk_chars=5_000,
        shard_bytes=20_000,
        eval_fraction=0.2,
        progress=False,
    )
    shards = sorted(p.name for p in (tmp_path / "parallel").glob("*.array_record-*"))
    assert len(shards) > 4
    inline = _records(tmp_path / "inline") + _records(tmp_path / "inline", EVAL_SPLIT)
    parallel = _records(tmp_path / "parallel") + _records(tmp_path / "parallel", EVAL_SPLIT)
    assert sorted(inline) == sorted(parallel)
    expected = _expected(small_documents, tiny_tokenizer, eval_fraction=0.2)
    assert _records(tmp_path / "parallel") == expected[TRAIN_SPLIT]


def test_empty_documents_and_sentences_are_dropped(tmp_path, tiny_tokenizer):
    # A combining mark alone normalises to nothing: no tokens.
    documents = [["Hello there.", "\u0301"], ["\u0301\u0308"], ["One more."]]
    summary = prepare(
        ListCorpus(documents), tiny_tokenizer, tmp_path / "out", eval_fraction=0, num_workers=0
    )
    assert summary.dropped_documents == 1
    assert summary.documents == {TRAIN_SPLIT: 2, EVAL_SPLIT: 0}
    records = _records(tmp_path / "out")
    assert records == [
        (tiny_tokenizer.encode("Hello there."), [len(tiny_tokenizer.encode("Hello there."))]),
        (tiny_tokenizer.encode("One more."), [len(tiny_tokenizer.encode("One more."))]),
    ]
    held_out = load_documents(tmp_path / "out", EVAL_SPLIT)
    assert len(held_out) == 0 and list(held_out) == [] and held_out.__getitems__([]) == []


def test_interrupted_run_resumes_without_duplicates(
    tmp_path, tiny_tokenizer, small_documents, caplog
):
    output = tmp_path / "out"
    settings = dict(num_workers=0, chunk_chars=2_000, shard_bytes=10_000, progress=False)
    with pytest.raises(KeyboardInterrupt):
        prepare(ListCorpus(small_documents, fail_after=200), tiny_tokenizer, output, **settings)
    partial = tmp_path / "out.partial"
    assert not output.exists() and (partial / "progress.json").is_file()
    assert list(partial.glob("*.tmp"))  # the shard being written when the run died

    with caplog.at_level(logging.INFO):
        summary = prepare(ListCorpus(small_documents), tiny_tokenizer, output, **settings)
    resumed = [r.message for r in caplog.records if r.message.startswith("resuming")]
    assert resumed and not resumed[0].endswith("after 0 documents")
    assert not partial.exists() and not list(output.glob("*.tmp"))
    assert not (output / "progress.json").exists()
    expected = _expected(small_documents, tiny_tokenizer)
    for split in SPLITS:
        assert _records(output, split) == expected[split]
        assert summary.documents[split] == len(expected[split])


def test_rerun_is_a_no_op_and_other_output_is_refused(tmp_path, tiny_tokenizer, small_documents):
    corpus = ListCorpus(small_documents[:20])
    output = tmp_path / "out"
    first = prepare(corpus, tiny_tokenizer, output, num_workers=0, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in output.iterdir()}
    again = prepare(corpus, tiny_tokenizer, output, num_workers=0, progress=False)
    assert again == first
    assert {p.name: p.stat().st_mtime_ns for p in output.iterdir()} == stamps
    with pytest.raises(InputError, match="'.*out' exists and is not this preparation"):
        prepare(ListCorpus(small_documents[:21]), tiny_tokenizer, output, progress=False)
    (tmp_path / "someone-elses").mkdir()
    (tmp_path / "someone-elses" / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="someone-elses' exists"):
        prepare(corpus, tiny_tokenizer, tmp_path / "someone-elses", progress=False)
    assert (tmp_path / "someone-elses" / "notes.txt").read_text() == "keep me"
    assert {p.name: p.stat().st_mtime_ns for p in output.iterdir()} == stamps


def test_load_documents_refuses_bad_input(
    tmp_path, tiny_prepared_dir, tiny_tokenizer, small_documents
):
    with pytest.raises(InputError, match="'.*nowhere' is not a prepared dataset"):
        load_documents(tmp_path / "nowhere")
    with pytest.raises(InputError, match="has no split 'test'"):
        load_documents(tiny_prepared_dir, "test")
    other = Tokenizer.train(sentences(small_documents), 300, output_prefix=tmp_path / "other")
    with pytest.raises(InputError, match=f"'{tiny_prepared_dir}' was tokenized by another"):
        load_documents(tiny_prepared_dir, TRAIN_SPLIT, other)
    with pytest.raises(InputError, match="eval_fraction must be in"):
        prepare(ListCorpus([]), tiny_tokenizer, tmp_path / "x", eval_fraction=1.0)


def test_prepare_and_load_without_tensorflow(tmp_path, tiny_tokenizer):
    """TensorFlow is made unimportable, as when it is not installed."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("First sentence.\nSecond sentence.\n\nAnother document.\n")
    run_without_tensorflow(f"""
        from albert_jax.data.corpus import TextFiles
        from albert_jax.data.documents import load_documents
        from albert_jax.data.prepare import prepare
        from albert_jax.data.tokenizer import Tokenizer

        tokenizer = Tokenizer.load({str(tiny_tokenizer.path)!r})
        prepare(TextFiles([{str(corpus)!r}]), tokenizer, {str(tmp_path / "out")!r},
                eval_fraction=0, num_workers=0, progress=False)
        source = load_documents({str(tmp_path / "out")!r}, "train", tokenizer)
        assert [len(source[i]["sentence_lengths"]) for i in range(len(source))] == [2, 1]
        """, tmp_path)
