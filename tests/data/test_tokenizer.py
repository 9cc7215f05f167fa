"""The SentencePiece tokenizer: ALBERT's layout and recipe, parity with transformers'
AlbertTokenizer, the original word-start rule, and clear errors for bad models."""

from __future__ import annotations

import hashlib
import itertools
import pickle
from pathlib import Path

import pytest
import sentencepiece as spm

from albert_jax.data.corpus import sentences
from albert_jax.data.tokenizer import SPECIAL_PIECES, Tokenizer, _starts_word
from albert_jax.errors import InputError
from tests.data.conftest import TINY_VOCAB_SIZE

# Punctuation, digits, accents, CJK, emoji, whitespace runs, empty strings, and the corners of
# the preprocessing (LaTeX quotes, compatibility characters, Greek final sigma, dotted İ).
TEXTS = [
    "",
    " ",
    " \t\n  \n",
    "Hello, World!",
    "The year 1999, and 2,000,000 people; 3.14159 pi... (really?) [yes] {no} <maybe> 50% #1 @me",
    "Café naïve résumé Ångström façade Øre œuvre",
    "ΟΔΟΣ Σίσυφος και ΣΟΦΙΑ",
    "İstanbul ǅemal ẞtraße",
    "日本語のテキストと中文，全角文字。",
    "emoji 😀🎉 👍🏽 👩‍👩‍👧 done",
    "multiple   spaces\t\ttabs\n\nnewlines \u00a0nbsp\u2003em\u200bzero-width",
    "``LaTeX quotes'' and 'single' and \"double\" and ’curly’ “quotes”",
    "＇＇fullwidth＇＇ ＡＢＣ １２３ Ⅻ ℃ ㎒ ﬁ ½ ²",
    "Ελληνικά Русский עברית العربية हिन्दी ไทย",
    "\u0301\u0308 leading combining marks",
    "mixed-case CamelCase snake_case https://example.org/a?b=1&c=2 e-mail@x.com",
    "9, 99, 1999, 12,345,678 a9,b 3,",
    "x" * 500,
]


@pytest.fixture(scope="module")
def covering_tokenizer(tmp_path_factory, builtin_documents) -> Tokenizer:
    """Trained on TEXTS too, so that their characters have pieces of their own: a difference
    in preprocessing then shows in the ids instead of hiding behind <unk>."""
    prefix = tmp_path_factory.mktemp("covering") / "covering"
    texts = [text for text in TEXTS for _ in range(200)]
    inputs = itertools.chain(sentences(builtin_documents), texts)
    return Tokenizer.train(inputs, 1500, output_prefix=prefix)


@pytest.fixture(scope="module")
def transformers_albert(covering_tokenizer):
    transformers = pytest.importorskip("transformers")
    return transformers.AlbertTokenizer(str(covering_tokenizer.path))


def test_layout_is_albert(tiny_tokenizer):
    ids = [tiny_tokenizer.id_to_piece(i) for i in range(5)]
    assert ids == ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]
    t = tiny_tokenizer
    assert (t.pad_id, t.unk_id, t.cls_id, t.sep_id, t.mask_id) == (0, 1, 2, 3, 4)
    assert t.vocab_size == TINY_VOCAB_SIZE
    # The README's user-defined symbols follow, as in 30k-clean.model.
    assert [t.id_to_piece(i) for i in range(5, 13)] == ["(", ")", '"', "-", ".", "–", "£", "€"]
    assert t.path.with_suffix(".vocab").is_file()
    assert t.fingerprint == hashlib.sha256(t.path.read_bytes()).hexdigest()


def test_text_is_lowercased_and_accents_removed(tiny_tokenizer):
    assert Tokenizer.normalize("  Café\tNAÏVE  ``x''  ") == 'cafe naive "x"'
    assert tiny_tokenizer.encode("CAFÉ") == tiny_tokenizer.encode("cafe")
    assert tiny_tokenizer.encode("") == []


@pytest.mark.parametrize("text", TEXTS)
def test_ids_match_transformers_albert_tokenizer(covering_tokenizer, transformers_albert, text):
    expected = transformers_albert.encode(text, add_special_tokens=False)
    ours = covering_tokenizer.encode(text)
    assert ours == expected
    assert covering_tokenizer.encode_batch([text, text]) == [expected, expected]
    assert covering_tokenizer.unk_id not in ours


def test_special_names_in_text_stay_text_unlike_transformers(
    covering_tokenizer, transformers_albert
):
    """The documented difference: "[MASK]" in corpus text must not become the mask token."""
    t = covering_tokenizer
    text = "a [MASK] b [CLS] <pad>"
    ours = t.encode(text)
    theirs = transformers_albert.encode(text, add_special_tokens=False)
    assert t.mask_id in theirs and t.cls_id in theirs and t.pad_id in theirs
    assert not {t.mask_id, t.cls_id, t.pad_id} & set(ours)
    assert t.decode(ours) == "a [mask] b [cls] <pad>"


def test_digit_comma_pieces_split_as_in_transformers(tmp_path):
    """A model with pieces that end in digit + comma (XLNet-style vocabularies have them; the
    ALBERT recipe splits digits off) exercises the original's digit-comma rule."""
    transformers = pytest.importorskip("transformers")
    prefix = tmp_path / "digits"
    text = "in 1999, there were 9, 12, or 129, items and 31,"
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter([text.lower()] * 20 + ["hello world. the cat sat."] * 20),
        model_prefix=str(prefix),
        vocab_size=60,
        hard_vocab_limit=False,
        pad_id=0,
        unk_id=1,
        bos_id=-1,
        eos_id=-1,
        control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        user_defined_symbols=["9,", "▁12,"],
        minloglevel=2,
    )
    model = str(prefix) + ".model"
    ours = Tokenizer.load(model)
    raw_pieces = spm.SentencePieceProcessor(model_file=model).EncodeAsPieces(text)
    assert {"9,", "▁12,"} <= set(raw_pieces)  # the rule has something to split
    expected = transformers.AlbertTokenizer(model).encode(text, add_special_tokens=False)
    assert ours.encode(text) == expected
    assert "9," not in [ours.id_to_piece(i) for i in ours.encode(text)]


def test_decode_names_control_pieces(tiny_tokenizer):
    t = tiny_tokenizer
    ids = [t.cls_id, *t.encode("The cat sat."), t.mask_id, t.sep_id, t.pad_id]
    assert t.decode(ids) == "[CLS] the cat sat. [MASK] [SEP] <pad>"
    assert t.decode(t.encode("Hello, World!")) == "hello, world!"


def test_word_start_follows_the_original_rule():
    assert _starts_word("▁the")
    assert _starts_word("<unk>")
    assert _starts_word(",") and _starts_word("(")  # a lone punctuation mark
    assert _starts_word("'s")  # the original's list lacks the apostrophe
    assert _starts_word("99") and _starts_word("a1")  # digits are not English letters
    assert _starts_word("é") and _starts_word("中")
    assert not _starts_word("ing")
    assert not _starts_word("ING")  # letters count whatever their case
    assert not _starts_word("ing.")  # letters and listed punctuation continue a word


def test_word_start_table(tiny_tokenizer):
    t = tiny_tokenizer
    table = t.word_start
    assert table.shape == (t.vocab_size,) and table.dtype == bool
    assert table[[t.pad_id, t.unk_id, t.cls_id, t.sep_id, t.mask_id]].all()
    for i in range(t.vocab_size):
        assert table[i] == (t.id_to_piece(i) in SPECIAL_PIECES or _starts_word(t.id_to_piece(i)))
    assert 0.2 < table.mean() < 0.9  # both kinds exist in a real vocabulary


def test_pickles_with_its_model(tiny_tokenizer):
    copy = pickle.loads(pickle.dumps(tiny_tokenizer))
    assert copy.fingerprint == tiny_tokenizer.fingerprint
    assert copy.encode(TEXTS[4]) == tiny_tokenizer.encode(TEXTS[4])
    assert (copy.word_start == tiny_tokenizer.word_start).all()


def test_train_from_files_and_refuse_to_overwrite(tmp_path, builtin_documents):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join("\n".join(d) for d in builtin_documents[:400]))
    prefix = tmp_path / "out" / "small"
    tokenizer = Tokenizer.train([corpus], 300, output_prefix=prefix)
    assert tokenizer.vocab_size == 300 and tokenizer.path == Path(str(prefix) + ".model")
    before = tokenizer.path.read_bytes()
    with pytest.raises(InputError, match="small.model' exists"):
        Tokenizer.train([corpus], 300, output_prefix=prefix)
    assert tokenizer.path.read_bytes() == before
    assert sorted(p.name for p in prefix.parent.iterdir()) == ["small.model", "small.vocab"]


def test_train_with_too_large_a_vocabulary_is_refused(tmp_path):
    with pytest.raises(InputError, match="Vocabulary size too high"):
        Tokenizer.train(["a tiny text.", "another one."], 5000, output_prefix=tmp_path / "t")
    assert list(tmp_path.iterdir()) == []


def test_bad_models_are_refused(tmp_path):
    with pytest.raises(InputError, match="missing.model"):
        Tokenizer.load(tmp_path / "missing.model")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model")
    with pytest.raises(InputError, match="garbage.model' is not a SentencePiece model"):
        Tokenizer.load(garbage)
    prefix = tmp_path / "plain"
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter(["hello world. the cat sat on the mat."] * 20),
        model_prefix=str(prefix),
        vocab_size=40,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    missing = r"lacks the special piece\(s\) <pad>, \[CLS\], \[SEP\], \[MASK\]"
    with pytest.raises(InputError, match=missing):
        Tokenizer.load(str(prefix) + ".model")
