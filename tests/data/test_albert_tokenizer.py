"""The public AlbertTokenizer: ids equal to transformers' slow AlbertTokenizer (texts, pairs,
batches, padding, truncation, options, special names), offsets into the original text, the
directories it loads and saves, and its errors."""

from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from albert_jax.data.albert_tokenizer import AlbertTokenizer
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError

transformers = pytest.importorskip("transformers")

LONG = " ".join(["The quick brown fox jumps over the lazy dog, again."] * 5)
# Unicode, accents (composed and decomposed), whitespace of every kind, empty strings, quote
# pairs, compatibility characters, digit commas, special-token names, long texts.
TEXTS = [
    "",
    " ",
    " \t\n  ",
    "Hello, World!",
    "  multiple   spaces\tand\ttabs\n\nnewlines  ",
    "Café naïve résumé Ångström façade Øre œuvre",
    "ΟΔΟΣ Σίσυφος και ΣΟΦΙΑ",
    "İstanbul ẞtraße ǅemal",
    "日本語のテキスト，全角文字。",
    "emoji 😀 👍🏽 done",
    "``LaTeX'' and 'single' and ’curly’ “quotes”",
    "＇＇fullwidth＇＇ ＡＢＣ １２３ ﬁ ½",
    "nbsp\u00a0em\u2003zero\u200bwidth",
    "\u0301\u0308 leading marks and e\u0301te decomposed",
    "In 1999, 12,345 people; 3,",
    "a [MASK] b [CLS] <pad> <PAD> <Unk> [cls] [SEP][SEP]",
    LONG,
    "x" * 300,
]
SHORT = TEXTS[:6] + [TEXTS[15], LONG]
ENGLISH = [
    "Albert is a lite model for self-supervised learning of language representations.",
    "It shares parameters across layers and factorizes the embedding matrix.",
    "The sentence order prediction task replaces next sentence prediction.",
    "Questions about the river, the bridge and the city were answered in July 2000.",
    "Researchers measured the temperature at noon; it was 21 degrees, warmer than expected!",
]
VOCAB_SIZE = 190


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    """A 190-piece model trained on TEXTS and a little English (a second), so that their
    characters have pieces of their own: a preprocessing difference then shows in the ids
    instead of hiding behind <unk>."""
    prefix = tmp_path_factory.mktemp("albert_tokenizer") / "tiny"
    Tokenizer.train([text for text in ENGLISH + TEXTS for _ in range(20)], VOCAB_SIZE, output_prefix=prefix)
    return Path(f"{prefix}.model")


@pytest.fixture(scope="module")
def ours(model_file) -> AlbertTokenizer:
    return AlbertTokenizer.from_pretrained(model_file)


@pytest.fixture(scope="module")
def theirs(model_file):
    return transformers.AlbertTokenizer(str(model_file))


def _same(ours_out: dict, theirs_out) -> None:
    """Same keys in the same order, same values (lists, or arrays of any int dtype)."""
    theirs_out = dict(theirs_out)
    assert list(ours_out) == list(theirs_out)
    for key, value in ours_out.items():
        if isinstance(value, np.ndarray):
            assert value.shape == theirs_out[key].shape and (value == theirs_out[key]).all(), key
        else:
            assert value == theirs_out[key], key


# -- ids equal transformers' ----------------------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_single_texts_match_transformers(ours, theirs, text):
    _same(ours(text), theirs(text))
    assert ours.tokenize(text) == theirs.tokenize(text)
    assert ours.encode(text) == theirs.encode(text)
    assert ours.encode(text, add_special_tokens=False) == theirs.encode(text, add_special_tokens=False)


def test_pairs_and_batches_match_transformers(ours, theirs):
    firsts, seconds = zip(*itertools.product(SHORT, SHORT), strict=True)
    for first, second in zip(firsts, seconds, strict=True):
        _same(ours(first, second), theirs(first, second))
        assert ours.encode(first, second) == theirs.encode(first, second)
    _same(ours(list(firsts), list(seconds)), theirs(list(firsts), list(seconds)))
    _same(ours(list(zip(firsts, seconds, strict=True))), theirs(list(zip(firsts, seconds, strict=True))))
    _same(ours(TEXTS), theirs(TEXTS))


@pytest.mark.parametrize("max_length", [3, 4, 7, 16, 40, 80])
@pytest.mark.parametrize("truncation", [True, "longest_first", None])
def test_longest_first_truncation_matches_transformers(ours, theirs, truncation, max_length):
    """One token at a time from the longer text (the second on ties), as the original does.
    truncation=None with max_length truncates too, as in transformers."""
    firsts, seconds = (list(x) for x in zip(*itertools.product(SHORT, SHORT), strict=True))
    kwargs = {"truncation": truncation, "max_length": max_length}
    out = ours(firsts, seconds, **kwargs)
    _same(out, theirs(firsts, seconds, **kwargs))
    assert max(map(len, out["input_ids"])) <= max_length
    _same(ours(TEXTS, **kwargs), theirs(TEXTS, **kwargs))


@pytest.mark.parametrize("truncation", ["only_first", "only_second"])
@pytest.mark.parametrize("max_length", [5, 12, 40])
def test_only_first_and_only_second_match_transformers(ours, theirs, truncation, max_length):
    """Where the named text is too short to cut, transformers returns an over-long sequence (and
    logs an error); ours refuses, and only there."""
    for first, second in itertools.product(SHORT, SHORT):
        kwargs = {"truncation": truncation, "max_length": max_length}
        expected = theirs(first, second, **kwargs)
        if len(expected["input_ids"]) > max_length:
            with pytest.raises(InputError, match=f"truncation='{truncation}' cannot fit"):
                ours(first, second, **kwargs)
        else:
            _same(ours(first, second, **kwargs), expected)
    if truncation == "only_first":
        _same(ours(LONG, **kwargs), theirs(LONG, **kwargs))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"padding": True},
        {"padding": "longest", "pad_to_multiple_of": 8},
        {"padding": "max_length", "max_length": 24, "truncation": True},
        {"padding": "max_length", "max_length": 32, "truncation": "only_second", "pad_to_multiple_of": 16},
        {"padding": True, "pad_to_multiple_of": 16, "max_length": 20},
        {"padding": True, "max_length": 10, "truncation": "longest_first"},
    ],
)
@pytest.mark.filterwarnings("ignore:`max_length` is ignored when `padding`=`True`")
def test_padding_and_arrays_match_transformers(ours, theirs, kwargs):
    firsts, seconds = ["", "a b", LONG[:40]], ["Café  naïve", "", "x y z"]
    _same(ours(firsts, seconds, **kwargs), theirs(firsts, seconds, **kwargs))
    arrays = ours(firsts, seconds, **kwargs, return_tensors="np")
    _same(arrays, theirs(firsts, seconds, **kwargs, return_tensors="np"))
    assert all(a.dtype == np.int32 for a in arrays.values())
    if kwargs.get("truncation") == "only_second":  # transformers ignores it for one text
        with pytest.raises(InputError, match="needs a second text"):
            ours("Hello, World!", **kwargs)
        return
    single = ours("Hello, World!", **kwargs, return_tensors="np")
    _same(single, theirs("Hello, World!", **kwargs, return_tensors="np"))
    assert single["input_ids"].ndim == 2


def test_layout_and_token_types(ours):
    out = ours("a b", "c")
    a, b, c = (ours.encode(t, add_special_tokens=False) for t in "abc")
    cls, sep = ours.cls_token_id, ours.sep_token_id
    assert out["input_ids"] == [cls, *a, *b, sep, *c, sep]
    assert out["token_type_ids"] == [0] * (len(a + b) + 2) + [1] * (len(c) + 1)
    assert out["attention_mask"] == [1] * len(out["input_ids"])
    assert ours("", "")["input_ids"] == [cls, sep, sep]


@pytest.mark.parametrize(
    "options",
    [
        {"do_lower_case": False},
        {"keep_accents": True},
        {"remove_space": False},
        {"do_lower_case": False, "remove_space": False, "keep_accents": True},
    ],
)
def test_options_from_tokenizer_config_match_transformers(tmp_path, model_file, options):
    (tmp_path / "spiece.model").write_bytes(model_file.read_bytes())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(options))
    ours = AlbertTokenizer.from_pretrained(tmp_path)
    theirs = transformers.AlbertTokenizer(str(model_file), **options)
    for key, value in options.items():
        assert getattr(ours.tokenizer, key) is value
    _same(ours(TEXTS), theirs(TEXTS))
    kwargs = {"truncation": True, "max_length": 20}
    _same(ours(TEXTS, TEXTS[::-1], **kwargs), theirs(TEXTS, TEXTS[::-1], **kwargs))


def test_special_token_names_follow_transformers(ours, theirs):
    """Special names in the text are the special tokens, in any casing that lowercases to a
    lowercase name (Kelvin sign K included); [MASK] takes the whitespace before it."""
    texts = ["a <PAD> b", "x <UN\u212a> y", "[Mask] [MASK]. b", "x<pad>y[SEP]z", "[[CLS]]", "a \t[MASK]"]
    for text in texts:
        _same(ours(text), theirs(text))
    assert ours("a <PAD> b")["input_ids"][2] == ours.pad_token_id
    keep_space = transformers.AlbertTokenizer(theirs.vocab_file, remove_space=False)
    mine = AlbertTokenizer(Tokenizer.load(theirs.vocab_file, remove_space=False))
    for text in texts:
        _same(mine(text), keep_space(text))


def test_split_special_tokens_keeps_names_as_text(model_file, theirs):
    ours = AlbertTokenizer.from_pretrained(model_file, split_special_tokens=True)
    text = "a [MASK] b <pad> [SEP]"
    ids = ours.encode(text, add_special_tokens=False)
    assert ids == ours.tokenizer.encode(text)  # the pretraining tokenizer's ids
    assert not {ours.mask_token_id, ours.pad_token_id, ours.sep_token_id} & set(ids)
    split = transformers.AlbertTokenizer(str(model_file), split_special_tokens=True)
    assert ids == split.encode(text, add_special_tokens=False)


# -- offsets --------------------------------------------------------------------------------------


def test_offsets_point_into_the_original_text(ours):
    text = "  Ångström   measured\tnaïve ``Café''  in 1999, e\u0301te. "
    ids, spans = ours.encode_with_offsets(text)
    assert ids == ours.encode(text, add_special_tokens=False)
    pieces = [ours.convert_ids_to_tokens(i) for i in ids]
    covered = {piece: text[start:end] for piece, (start, end) in zip(pieces, spans, strict=True)}
    # Each piece spans the original characters it came from: accents, case, quote pairs and
    # decomposed accents included, whitespace excluded.
    words = {}
    for word in ["Ångström", "measured", "naïve", "``", "Café", "''", "1999", ",", "e\u0301te", "."]:
        start = text.index(word)
        inside = [(s, e) for s, e in spans if start <= s and e <= start + len(word) and e > s]
        words[word] = text[min(s for s, _ in inside) : max(e for _, e in inside)]
    assert words == {w: w for w in words}, covered
    for (start, end), piece in zip(spans, pieces, strict=True):
        assert 0 <= start <= end <= len(text)
        assert text[start:end] == text[start:end].strip()
        if piece not in ("▁", "<unk>"):
            assert Tokenizer.normalize(text[start:end]) == piece.lstrip("▁")


def test_offsets_recover_an_answer_span(ours):
    """SQuAD's use: the tokens inside an answer's character span give back its exact text."""
    context = "The  Øresund Bridge  (Danish: Øresundsbroen) opened in July 2000."
    answer = "Øresundsbroen"
    start = context.index(answer)
    ids, spans = ours.encode_with_offsets(context)
    inside = [i for i, (s, e) in enumerate(spans) if start <= s and e <= start + len(answer) and e > s]
    assert context[spans[inside[0]][0] : spans[inside[-1]][1]] == answer


def test_offsets_of_special_names_and_the_offset_mapping(ours, theirs):
    text = "a [MASK] b"
    ids, spans = ours.encode_with_offsets(text)
    assert ids == theirs.encode(text, add_special_tokens=False)
    assert spans[ids.index(ours.mask_token_id)] == (2, 8)
    out = ours(["a b", text], ["Café", ""], padding=True, return_offsets_mapping=True)
    assert out["input_ids"] == theirs(["a b", text], ["Café", ""], padding=True)["input_ids"]
    specials = {ours.cls_token_id, ours.sep_token_id, ours.pad_token_id}
    assert ours.pad_token_id in out["input_ids"][0] + out["input_ids"][1]
    for ids, mapping in zip(out["input_ids"], out["offset_mapping"], strict=True):
        assert len(mapping) == len(ids)
        assert all(span == (0, 0) for i, span in zip(ids, mapping, strict=True) if i in specials)
    ids, mapping, types = out["input_ids"][0], out["offset_mapping"][0], out["token_type_ids"][0]
    first = [span for i, span, kind in zip(ids, mapping, types, strict=True) if kind == 0 and i not in specials]
    second = [span for i, span, kind in zip(ids, mapping, types, strict=True) if kind == 1 and i not in specials]
    assert "a b"[first[0][0] : first[-1][1]] == "a b"  # each text's own offsets
    assert "Café"[second[0][0] : second[-1][1]] == "Café"
    arrays = ours(["a b", text], return_offsets_mapping=True, padding=True, return_tensors="np")
    assert arrays["offset_mapping"].shape == (*arrays["input_ids"].shape, 2)


_TRICKY = list(" \t\n\u00a0\u2003``''’ÅåéeÉ\u0301\u0308ﬁ½１ΣσςΟ𝚺İẞ日😀,19.-()[]<>MASKpadunk")


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.one_of(st.sampled_from(_TRICKY), st.characters(codec="utf-8")), max_size=30),
    remove_space=st.booleans(),
    do_lower_case=st.booleans(),
)
def test_offsets_hold_for_any_text(model_file, text, remove_space, do_lower_case):
    tokenizer = Tokenizer.load(model_file, remove_space=remove_space, do_lower_case=do_lower_case)
    ids, spans = tokenizer.encode_with_offsets(text)
    assert ids == tokenizer.encode(text)
    normalized, starts, ends = tokenizer._normalize_aligned(text)
    assert normalized == tokenizer._normalize(text)
    assert len(starts) == len(ends) == len(normalized)
    assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends, strict=True))
    assert starts == sorted(starts) and ends == sorted(ends)
    assert len(spans) == len(ids)
    for start, end in spans:
        assert 0 <= start <= end <= len(text)
        assert start == end or not (text[start].isspace() or text[end - 1].isspace())
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)


# -- decoding and vocabulary ----------------------------------------------------------------------


def test_decode_and_vocabulary(ours, theirs):
    ids = ours("The cat, [MASK] sat.", "A dög!  ")["input_ids"] + [ours.pad_token_id] * 2
    assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(ids, skip_special_tokens=True)
    assert ours.decode(ids) == "[CLS] the cat, [MASK] sat. [SEP] a dog! [SEP] <pad> <pad>"
    the = ours.encode("The", add_special_tokens=False)
    assert ours.decode([ours.unk_token_id, *the, ours.unk_token_id, ours.cls_token_id]) == "<unk> the <unk> [CLS]"
    assert ours.decode(np.array(ids)) == ours.decode(ids)
    assert ours.batch_decode([ids, ids[:3]], skip_special_tokens=True) == [
        theirs.decode(ids, skip_special_tokens=True), theirs.decode(ids[:3], skip_special_tokens=True)]
    assert ours.convert_ids_to_tokens(ids) == theirs.convert_ids_to_tokens(ids)
    assert ours.convert_ids_to_tokens(ids, skip_special_tokens=True) == theirs.convert_ids_to_tokens(
        ids, skip_special_tokens=True)
    assert ours.convert_ids_to_tokens(np.int64(4)) == "[MASK]"
    pieces = ours.tokenize("Hello, World!")
    assert ours.convert_tokens_to_ids(pieces) == theirs.convert_tokens_to_ids(pieces)
    assert ours.convert_tokens_to_ids("no-such-piece") == ours.unk_token_id
    assert len(ours) == ours.vocab_size == len(theirs) == VOCAB_SIZE
    assert (ours.pad_token_id, ours.unk_token_id, ours.cls_token_id, ours.sep_token_id, ours.mask_token_id) == (
        theirs.pad_token_id, theirs.unk_token_id, theirs.cls_token_id, theirs.sep_token_id,
        theirs.mask_token_id)
    assert (ours.pad_token, ours.cls_token, ours.sep_token, ours.mask_token, ours.unk_token) == (
        "<pad>", "[CLS]", "[SEP]", "[MASK]", "<unk>")


def test_pickles(ours):
    copy = pickle.loads(pickle.dumps(ours))
    assert copy(TEXTS[15], TEXTS[5]) == ours(TEXTS[15], TEXTS[5])


# -- directories ----------------------------------------------------------------------------------


def test_loads_every_layout(tmp_path, model_file, ours):
    hf, original, workdir = tmp_path / "hf", tmp_path / "original", tmp_path / "workdir"
    for directory, name in ((hf, "spiece.model"), (original, "30k-clean.model"), (workdir, "spiece.model")):
        directory.mkdir()
        (directory / name).write_bytes(model_file.read_bytes())
    (original / "30k-clean.vocab").write_text("")
    (workdir / "config.json").write_text("{}")
    (hf / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "model_max_length": 64, "tokenizer_class": "AlbertTokenizer",
         "mask_token": {"content": "[MASK]", "lstrip": True}}))
    loaded = {p.name: AlbertTokenizer.from_pretrained(p) for p in (hf, original, workdir, model_file)}
    for tokenizer in loaded.values():
        assert tokenizer(TEXTS) == ours(TEXTS)
        assert tokenizer.tokenizer.do_lower_case
    assert loaded["hf"].model_max_length == 64 and loaded["workdir"].model_max_length == 512
    assert loaded["original"].tokenizer.path.name == "30k-clean.model"
    assert len(loaded["hf"](LONG, truncation=True)["input_ids"]) == 64
    assert AlbertTokenizer.from_pretrained(hf, model_max_length=32).model_max_length == 32
    assert not AlbertTokenizer.from_pretrained(hf, do_lower_case=False).tokenizer.do_lower_case


def test_save_pretrained_loads_in_transformers(tmp_path, model_file, ours):
    cased = AlbertTokenizer.from_pretrained(model_file, do_lower_case=False, model_max_length=128)
    for name, tokenizer in (("default", ours), ("cased", cased)):
        directory = tmp_path / name
        tokenizer.save_pretrained(directory)
        assert sorted(p.name for p in directory.iterdir()) == [
            "special_tokens_map.json", "spiece.model", "tokenizer_config.json"]
        slow = transformers.AlbertTokenizer.from_pretrained(directory)
        assert slow.do_lower_case == tokenizer.tokenizer.do_lower_case
        assert slow.model_max_length == tokenizer.model_max_length
        _same(tokenizer(TEXTS, TEXTS[::-1], truncation=True, max_length=30, padding=True),
              slow(TEXTS, TEXTS[::-1], truncation=True, max_length=30, padding=True))
        if name == "default":  # converting to the fast tokenizer takes seconds: once is enough
            auto = transformers.AutoTokenizer.from_pretrained(directory)
            assert type(auto).__name__ == "AlbertTokenizerFast"
            plain = ["Hello, World!", "Café naïve  résumé", "a [MASK] b", LONG]  # fast differs elsewhere
            _same(tokenizer(plain, padding=True), auto(plain, padding=True))
        again = AlbertTokenizer.from_pretrained(directory)
        assert again.tokenizer.do_lower_case == tokenizer.tokenizer.do_lower_case
        assert again.model_max_length == tokenizer.model_max_length
        assert again(TEXTS) == tokenizer(TEXTS)


def test_unusable_paths_and_configs_are_refused(tmp_path, model_file):
    with pytest.raises(InputError, match=r"'.*missing' does not exist; expected a SentencePiece \.model"):
        AlbertTokenizer.from_pretrained(tmp_path / "missing")
    with pytest.raises(InputError, match=r"'.*empty' holds no tokenizer: looked for spiece\.model .* 30k-clean\.model"):
        (tmp_path / "empty").mkdir()
        AlbertTokenizer.from_pretrained(tmp_path / "empty")
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    with pytest.raises(InputError, match="notes.txt' is not a SentencePiece model"):
        AlbertTokenizer.from_pretrained(not_a_model)
    bad_configs = {
        "{not json": "is not JSON",
        "[]": "must hold a JSON object",
        '{"do_lower_case": "yes"}': "do_lower_case must be true or false, got 'yes'",
        '{"model_max_length": 0}': "model_max_length must be a positive integer",
        '{"mask_token": "<mask>"}': "mask_token is '<mask>'; AlbertTokenizer supports ALBERT's special",
    }
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "spiece.model").write_bytes(model_file.read_bytes())
    for text, message in bad_configs.items():
        (tmp_path / "hf" / "tokenizer_config.json").write_text(text)
        with pytest.raises(InputError, match=f"tokenizer_config.json'?:? .*{message}|{message}"):
            AlbertTokenizer.from_pretrained(tmp_path / "hf")
    (tmp_path / "hf" / "tokenizer_config.json").write_text('{"model_max_length": 1e30}')
    assert AlbertTokenizer.from_pretrained(tmp_path / "hf").model_max_length == 512


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t("a", padding="max"), r"padding='max' is not one of True, False, 'do_not_pad'"),
        (lambda t: t("a", truncation="first"), r"truncation='first' is not one of"),
        (lambda t: t("a", return_tensors="pt"), r"return_tensors='pt' is not supported"),
        (lambda t: t(["a", "a b c"], return_tensors="np"), r"needs sequences of one length, these have 3 to \d+"),
        (lambda t: t("a", "b", max_length=2, truncation=True), r"max_length=2 leaves no room .* take 3"),
        (lambda t: t(["a b c"], truncation="only_second", max_length=3),
         r"example 0: truncation='only_second' needs a second"),
        (lambda t: t("a", max_length=0), r"max_length must be a positive integer, got 0"),
        (lambda t: t(["a", "b"], ["c"]), r"text_pair must be a list of 2 str"),
        (lambda t: t("a", ["b"]), r"text_pair must be a str too"),
        (lambda t: t([("a", "b", "c")]), r"text\[0\] must be a str or a \(str, str\) pair"),
        (lambda t: t(["a", 3]), r"text\[1\] must be a str or a \(str, str\) pair, got 3"),
        (lambda t: t(["a"], [3]), r"expected a text \(str\), got int 3"),
        (lambda t: t("a b c", max_length=2),
         r"truncation='longest_first' cannot fit max_length=2: .* the text has only"),
        (lambda t: t(["a"], padding=True, truncation=True, max_length=30, pad_to_multiple_of=16),
         r"max_length=30 is not a multiple of pad_to_multiple_of=16"),
        (lambda t: t(7), r"text must be a str, a list of str"),
    ],
)
def test_bad_arguments_are_refused(ours, call, message):
    with pytest.raises(InputError, match=message):
        call(ours)


def test_importing_albert_jax_for_the_tokenizer_does_not_import_jax():
    code = ("import sys, albert_jax; albert_jax.AlbertTokenizer; "
            "print(sorted(m for m in ('jax', 'flax', 'tensorflow', 'torch') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parents[2])
    assert result.stdout.strip() == "[]"


def test_offsets_of_split_digit_comma_pieces(tmp_path):
    """Pieces that the original's digit-comma rule splits ("▁12," -> "▁12" + ",") get the
    characters each part stands for."""
    import sentencepiece as spm

    prefix = tmp_path / "digits"
    text = "In 1999, there were 9, 12, or 129, items and 31,"
    spm.SentencePieceTrainer.Train(
        sentence_iterator=iter([text.lower()] * 20 + ["hello world. the cat sat."] * 20),
        model_prefix=str(prefix), vocab_size=60, hard_vocab_limit=False, pad_id=0, unk_id=1,
        bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        user_defined_symbols=["9,", "▁12,"], minloglevel=2,
    )
    ours = AlbertTokenizer.from_pretrained(f"{prefix}.model")
    ids, spans = ours.encode_with_offsets(text)
    assert ids == transformers.AlbertTokenizer(f"{prefix}.model").encode(text, add_special_tokens=False)
    pieces = ours.convert_ids_to_tokens(ids)
    assert "▁12," not in pieces and "9," not in pieces  # split, "▁12," even into "▁1" "2" ","
    assert [text[start:end].lower() for start, end in spans] == [p.lstrip("▁") for p in pieces]
