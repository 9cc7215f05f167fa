"""Property-based tests of the data path on hostile input: arbitrary Unicode, control characters,
giant lines, empty and one-word documents, bytes that are not UTF-8. Nothing may crash (bad
files raise InputError, nothing else), and the documented invariants hold: ids within the
vocabulary, `[CLS] A [SEP] B [SEP]` with its token types, fields of their fixed widths, masks
within their budget, labels in range."""

from __future__ import annotations

import dataclasses
import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from albert_jax.data import pretraining as pt
from albert_jax.data.corpus import TextFiles, text_files
from albert_jax.data.corpus.builtin import prose_sentences
from albert_jax.data.corpus.splitter import split_sentences
from albert_jax.data.tokenizer import SPECIAL_PIECES
from albert_jax.errors import InputError

# The session-scoped tokenizer is shared by every example; hypothesis need not worry about it.
PROPERTY_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# Characters that stress normalisation, splitting and tokenization, mixed into arbitrary text.
_HOSTILE = list(
    " \t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\u00a0\u200b\ufeff\x00\x01\x7f"
    "``''’é\u0301\u0308ﬁ½１Σς𝚺İẞ日😀。！？.!?…,19-()[]<>"
) + ["[MASK]", "[CLS]", "[SEP]", "<pad>", "<unk>", "▁"]
_PIECES = st.one_of(st.sampled_from(_HOSTILE), st.characters(codec="utf-8"))
_TEXT = st.lists(_PIECES, max_size=40).map("".join)
# A giant line: a short run repeated thousands of times (one word, or many).
_GIANT = st.builds(lambda run, times: "".join(run) * times, st.lists(_PIECES, min_size=1, max_size=3),
                   st.integers(1_000, 4_000))  # fmt: skip
_LINE = st.one_of(_TEXT, _GIANT)


# ---------------------------------------------------------------------------------------------
# Tokenizer


@PROPERTY_SETTINGS
@given(texts=st.lists(_LINE, max_size=4))
def test_tokenizer_encodes_any_text_into_the_vocabulary(tiny_tokenizer, texts):
    tokenizer = tiny_tokenizer
    controls = {tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id}
    batch = tokenizer.encode_batch(texts)
    assert len(batch) == len(texts)
    for text, ids in zip(texts, batch, strict=True):
        assert ids == tokenizer.encode(text)
        assert all(0 <= i < tokenizer.vocab_size for i in ids)
        # Special-token names in the text are text: a corpus cannot smuggle in a real [MASK].
        assert controls.isdisjoint(ids)
        offsets_ids, spans = tokenizer.encode_with_offsets(text)
        assert offsets_ids == ids and len(spans) == len(ids)
        assert all(0 <= start <= end <= len(text) for start, end in spans)
        assert isinstance(tokenizer.decode(ids), str)



# ---------------------------------------------------------------------------------------------
# Corpus readers


@PROPERTY_SETTINGS
@given(text=_LINE)
def test_split_sentences_keeps_every_visible_character(text):
    sentences = split_sentences(text)
    assert all(s and s == s.strip() and "\n" not in s for s in sentences)
    assert "".join("".join(s.split()) for s in sentences) == "".join(text.split())


@PROPERTY_SETTINGS
@given(text=_TEXT)
def test_prose_sentences_of_any_docstring(text):
    assert all(s and s == s.strip() for s in prose_sentences(text))


# Lines as bytes: text, text with NULs or control characters, or bytes that are not UTF-8.
_LINE_BYTES = st.one_of(
    _TEXT.map(lambda s: s.replace("\n", " ").encode()),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b" ")),
    _GIANT.map(lambda s: s.replace("\n", " ").encode("utf-8")),
    st.just(b""),
)


@PROPERTY_SETTINGS
@given(lines=st.lists(_LINE_BYTES, max_size=12), compress=st.booleans(),
       max_sentences=st.integers(1, 4))  # fmt: skip
def test_text_files_read_any_bytes_or_refuse_them(lines, compress, max_sentences):
    content = b"\n".join(lines)
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setattr(text_files, "MAX_DOCUMENT_SENTENCES", max_sentences)
        path = Path(directory, "corpus.txt.gz" if compress else "corpus.txt")
        path.write_bytes(gzip.compress(content) if compress else content)
        try:
            corpus = TextFiles([path])
        except InputError as error:
            assert f"not UTF-8 text at {path}:" in str(error)
            assert b"\0" in content[: text_files.SNIFF_BYTES] or not all(map(_decodes, lines))
            return
        documents = list(corpus)
        assert list(TextFiles([path])) == documents  # the same again: prepare resumes on it
    assert documents == _documents_of(content.split(b"\n"), max_sentences)
    assert corpus.skipped_lines == sum(not _decodes(line) for line in lines)


def _documents_of(lines: list[bytes], max_sentences: int) -> list[list[str]]:
    """The format, spelled out: blank lines end documents, lines that are not UTF-8 are
    skipped, and a document is cut after `max_sentences` sentences."""
    documents: list[list[str]] = [[]]
    for line in lines:
        if not _decodes(line):
            continue
        sentence = line.decode().strip()
        if sentence and len(documents[-1]) < max_sentences:
            documents[-1].append(sentence)
        elif sentence:
            documents.append([sentence])
        elif documents[-1]:
            documents.append([])
    return [document for document in documents if document]


def _decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Pretraining examples

_CONFIGS = st.builds(
    pt.PretrainingDataConfig,
    max_seq_length=st.integers(5, 48),
    max_predictions_per_seq=st.integers(1, 12),
    masked_lm_prob=st.sampled_from([0.0, 0.15, 0.5, 1.0]),
    ngram=st.integers(1, 4),
    favor_shorter_ngram=st.booleans(),
    do_permutation=st.booleans(),
    do_whole_word_mask=st.booleans(),
    short_seq_prob=st.sampled_from([0.0, 0.1, 1.0]),
    random_next_sentence=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)


def _documents(vocab_size: int) -> st.SearchStrategy[list[dict[str, np.ndarray]]]:
    """Documents as prepare stores them, empty ones and one-token ones included; sentences of
    length 0 too, which prepare never writes but the reader must survive."""
    sentence = st.lists(st.integers(len(SPECIAL_PIECES), vocab_size - 1), max_size=30)
    document = st.lists(sentence, max_size=8).map(
        lambda sentences: {
            "token_ids": np.array([i for s in sentences for i in s], dtype=np.int32),
            "sentence_lengths": np.array([len(s) for s in sentences], dtype=np.int32),
        }
    )
    return st.lists(document, min_size=1, max_size=5)


@PROPERTY_SETTINGS
@given(data=st.data(), config=_CONFIGS, epoch=st.integers(0, 3))
def test_examples_of_any_documents_keep_the_batch_contract(tiny_tokenizer, data, config, epoch):
    vocab = pt.Vocab.from_tokenizer(tiny_tokenizer)
    documents = data.draw(_documents(vocab.size))
    for index, document in enumerate(documents):
        examples = pt.document_examples(document, documents, index, epoch, config, vocab)
        if not len(document["token_ids"]):
            assert examples == []
        for example in examples:
            _check_example(example, config, vocab)


@PROPERTY_SETTINGS
@given(texts=st.lists(st.lists(_LINE, max_size=4), min_size=1, max_size=4), config=_CONFIGS)
def test_examples_of_any_text_keep_the_batch_contract(tiny_tokenizer, texts, config):
    """Text all the way: arbitrary sentences, tokenized as `prepare` does, into examples."""
    vocab = pt.Vocab.from_tokenizer(tiny_tokenizer)
    documents = []
    for sentences in texts:
        ids = [s for s in tiny_tokenizer.encode_batch(sentences) if s]
        documents.append({
            "token_ids": np.array([i for s in ids for i in s], dtype=np.int32),
            "sentence_lengths": np.array([len(s) for s in ids], dtype=np.int32),
        })  # fmt: skip
    for index, document in enumerate(documents):
        for example in pt.document_examples(document, documents, index, 0, config, vocab):
            _check_example(example, config, vocab)


def _check_example(example: dict[str, np.ndarray], config: pt.PretrainingDataConfig, vocab: pt.Vocab) -> None:
    shapes = pt.example_shapes(config)
    assert list(example) == list(shapes)
    for key, shape in shapes.items():
        assert example[key].shape == shape and example[key].dtype == pt.BATCH_DTYPE, key
    ids, attention, types = example["input_ids"], example["attention_mask"], example["token_type_ids"]
    length = int(attention.sum())
    assert (attention[:length] == 1).all() and (attention[length:] == 0).all()
    assert length <= config.max_seq_length
    # [CLS] A [SEP] B [SEP], padding after; token types 0 over [CLS] A [SEP], 1 over B [SEP].
    len_a = int((types[:length] == 0).sum()) - 2
    len_b = length - len_a - 3
    assert len_a >= 1 and len_b >= 1
    assert (types[: len_a + 2] == 0).all() and (types[len_a + 2 : length] == 1).all()
    assert (types[length:] == 0).all()
    assert ids[0] == vocab.cls_id and ids[len_a + 1] == vocab.sep_id and ids[length - 1] == vocab.sep_id
    assert (ids[length:] == vocab.pad_id).all()
    assert ((ids >= 0) & (ids < vocab.size)).all()
    # Masks: a prefix of slots, positions sorted inside the segments, within the budget.
    weights = example["masked_lm_weights"]
    count = int(weights.sum())
    assert (weights[:count] == 1).all() and (weights[count:] == 0).all()
    budget = pt.masking_budget(length, config)
    assert budget <= config.max_predictions_per_seq
    assert count <= budget * (2 if config.do_permutation else 1) <= config.num_prediction_slots
    positions = example["masked_lm_positions"][:count]
    assert (np.diff(positions) > 0).all()
    assert not np.isin(positions, [0, len_a + 1, length - 1]).any() and (positions < length).all()
    labels = example["masked_lm_ids"][:count]
    assert ((labels >= 0) & (labels < vocab.size)).all()
    assert not np.isin(labels, [vocab.pad_id, vocab.cls_id, vocab.sep_id, vocab.mask_id]).any()
    assert (example["masked_lm_positions"][count:] == 0).all()
    assert (example["masked_lm_ids"][count:] == 0).all()
    assert example["sentence_order_label"] in (0, 1)


@PROPERTY_SETTINGS
@given(data=st.data(), config=_CONFIGS)
def test_masking_of_any_sequence(tiny_tokenizer, data, config):
    vocab = pt.Vocab.from_tokenizer(tiny_tokenizer)
    length = data.draw(st.integers(1, 64))
    tokens = np.array(data.draw(st.lists(st.integers(0, vocab.size - 1), min_size=length,
                                         max_size=length)), dtype=np.int32)  # fmt: skip
    maskable = np.array(data.draw(st.lists(st.booleans(), min_size=length, max_size=length)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    masked = pt.create_masked_lm_predictions(tokens, maskable, config, vocab, rng)
    budget = pt.masking_budget(length, config)
    assert len(masked.positions) <= budget * (2 if config.do_permutation else 1)
    assert (np.diff(masked.positions) > 0).all() and maskable[masked.positions].all()
    np.testing.assert_array_equal(masked.labels, tokens[masked.positions])
    unmasked = np.setdiff1d(np.arange(length), masked.positions)
    np.testing.assert_array_equal(masked.input_ids[unmasked], tokens[unmasked])
    assert ((masked.input_ids >= 0) & (masked.input_ids < vocab.size)).all()
    # Spans of the masking pass: no longer than drawn, drawn no longer than `ngram` words.
    assert (masked.spans[:, 1] <= masked.spans[:, 2]).all()
    assert (masked.spans[:, 2] <= config.ngram).all()


@PROPERTY_SETTINGS
@given(data=st.data(), config=_CONFIGS)
def test_sentence_pairs_of_any_documents(tiny_tokenizer, data, config):
    vocab = pt.Vocab.from_tokenizer(tiny_tokenizer)
    documents = data.draw(_documents(vocab.size))
    tokens = {int(i) for document in documents for i in document["token_ids"]}
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for index, document in enumerate(documents):
        for pair in pt.create_sentence_pairs(document, documents, index, config, rng):
            assert len(pair.tokens_a) >= 1 and len(pair.tokens_b) >= 1
            assert len(pair.tokens_a) + len(pair.tokens_b) <= config.max_seq_length - 3
            assert pair.label in (0, 1) and (pair.label == 1 or not pair.b_is_random)
            assert set(pair.tokens_a.tolist()) <= tokens and set(pair.tokens_b.tolist()) <= tokens
            if not pair.b_is_random:  # both from this document
                own = set(document["token_ids"].tolist())
                assert set(pair.tokens_a.tolist()) | set(pair.tokens_b.tolist()) <= own


def test_one_word_documents_make_examples(tiny_tokenizer):
    """The smallest input that makes an example: one document of one token."""
    vocab = pt.Vocab.from_tokenizer(tiny_tokenizer)
    word = tiny_tokenizer.encode("word")
    documents = [{"token_ids": np.array(word, np.int32), "sentence_lengths": np.array([len(word)], np.int32)}]
    config = dataclasses.replace(pt.PretrainingDataConfig(), max_seq_length=8)
    (example,) = pt.document_examples(documents[0], documents, 0, 0, config, vocab)
    _check_example(example, config, vocab)
    assert example["sentence_order_label"] == 1  # B came from "another" document: itself
