"""SentencePiece tokenizer with ALBERT's preprocessing, trained with ALBERT's recipe.

Encoding gives the ids of transformers 4.x's slow `AlbertTokenizer` (default options) on the
same .model file, for any text, with one deliberate difference: special-token names written in
the text ("[MASK]", "[CLS]", "<pad>", ...) are plain text here, as in the original
`create_pretraining_data.py`, whereas transformers turns them into the special ids. Corpus text
that mentions "[MASK]" must not put a real mask into the data.

Preprocessing, as in transformers (`do_lower_case=True, remove_space=True,
keep_accents=False`): whitespace runs become one space and the ends are stripped; LaTeX quotes
`` and '' become "; NFKD decomposition with combining marks dropped (accents go); lowercasing,
character by character as transformers does (so a word-final capital sigma becomes σ, not ς).
Then SentencePiece applies the model's own normalisation (nmt_nfkc for ALBERT's models), and a
piece ending in digit + comma ("▁1999,") is split before its comma, as the original
`tokenization.encode_pieces` does.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm

from albert_jax.data.corpus import TextFiles, sentences
from albert_jax.errors import InputError

DEFAULT_VOCAB_SIZE = 30000
SPECIAL_PIECES = ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]")
WORD_BOUNDARY = "▁"  # SentencePiece's marker for a preceding space

# The original README's spm_train flags (ids: <pad>=0, <unk>=1, [CLS]=2, [SEP]=3, [MASK]=4).
_TRAINER_FLAGS: dict[str, Any] = {
    "model_type": "unigram",
    "pad_id": 0,
    "unk_id": 1,
    "bos_id": -1,
    "eos_id": -1,
    "control_symbols": ["[CLS]", "[SEP]", "[MASK]"],
    "user_defined_symbols": ["(", ")", '"', "-", ".", "–", "£", "€"],
    "shuffle_input_sentence": True,
    "character_coverage": 0.99995,
}

# `_is_start_piece_sp` of the original create_pretraining_data.py: a piece continues a word
# only if it has no "▁", does not open with "<", is not a lone punctuation mark, and consists of
# English letters (any case) and these marks. The list lacks ' < = >, so a piece holding one of
# those starts a word; so does any piece with a digit or a non-English letter.
_ENGLISH_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_PUNCTUATION = frozenset('!"#$%&()*+,-./:;?@[\\]^_`{|}~')


class Tokenizer:
    """A SentencePiece model plus ALBERT's text preprocessing.

    Attributes:
      pad_id, unk_id, cls_id, sep_id, mask_id: ids of the special pieces, looked up by name.
      word_start: bool [vocab_size], True where a piece starts a word by the original's rule
        (above); special pieces count as word starts.
      fingerprint: sha256 of the model bytes; prepared data records it.
      path: the .model file, if loaded from one.

    Picklable (it carries the model bytes), so data-loader worker processes can use it.
    """

    def __init__(self, model: bytes, path: str | os.PathLike[str] | None = None) -> None:
        """Wraps serialized SentencePiece model bytes; `path` only names it in messages."""
        self.path = Path(path) if path is not None else None
        self._model = model
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.LoadFromSerializedProto(model)
        except (RuntimeError, OSError) as error:
            raise InputError(f"{self._name} is not a SentencePiece model") from error
        ids = {piece: self._sp.PieceToId(piece) for piece in SPECIAL_PIECES}
        missing = [piece for piece, i in ids.items() if self._sp.IdToPiece(i) != piece]
        if missing:
            raise InputError(
                f"{self._name} lacks the special piece(s) {', '.join(missing)}; ALBERT needs "
                f"{', '.join(SPECIAL_PIECES)} (train one with `albert-jax tokenizer train`)"
            )
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = ids.values()
        self.fingerprint = hashlib.sha256(model).hexdigest()
        pieces = [self._sp.IdToPiece(i) for i in range(self.vocab_size)]
        self.word_start = np.array(
            [self._is_control(i) or _starts_word(piece) for i, piece in enumerate(pieces)],
            dtype=bool,
        )
        self._digit_comma_ids = frozenset(
            i for i, piece in enumerate(pieces) if _ends_in_digit_comma(piece)
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Loads a .model file: ours, the original ALBERT 30k-clean.model, or any SentencePiece
        model that has the special pieces."""
        try:
            model = Path(path).read_bytes()
        except OSError as error:
            raise InputError(f"cannot read tokenizer {str(path)!r}: {error.strerror}") from error
        return cls(model, path)

    @classmethod
    def train(
        cls,
        inputs: Iterable[str | os.PathLike[str]],
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        *,
        output_prefix: str | os.PathLike[str],
        input_sentence_size: int = 10_000_000,
        num_threads: int | None = None,
    ) -> Tokenizer:
        """Trains a unigram model with ALBERT's recipe; writes PREFIX.model and PREFIX.vocab.

        `inputs` holds texts (each line a sentence) and/or paths (`os.PathLike`, not `str`) of
        files in the BERT format. Sentences are preprocessed as for encoding before training.
        At most `input_sentence_size` sentences, sampled at random, are used, as in the
        original. Refuses to overwrite existing output files.
        """
        prefix = Path(output_prefix)
        outputs = [prefix.with_name(prefix.name + suffix) for suffix in (".model", ".vocab")]
        for output in outputs:
            if output.exists():
                raise InputError(f"{str(output)!r} exists; remove it or choose another prefix")
        prefix.parent.mkdir(parents=True, exist_ok=True)
        # Train under a temporary name, then rename: an interrupted run leaves no half model.
        with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=".tokenizer-") as scratch:
            scratch_prefix = Path(scratch, "model")
            try:
                spm.SentencePieceTrainer.Train(
                    sentence_iterator=_training_sentences(inputs),
                    model_prefix=str(scratch_prefix),
                    vocab_size=vocab_size,
                    input_sentence_size=input_sentence_size,
                    num_threads=num_threads or os.cpu_count() or 1,
                    minloglevel=1,
                    **_TRAINER_FLAGS,
                )
            except RuntimeError as error:  # e.g. a vocabulary larger than the text allows
                # Drop SentencePiece's "INTERNAL: src/file.cc(744) [condition] " prefix.
                reason = str(error).rsplit("] ", 1)[-1]
                raise InputError(f"tokenizer training failed: {reason}") from error
            for suffix, output in zip((".model", ".vocab"), outputs, strict=True):
                os.replace(scratch_prefix.with_suffix(suffix), output)
        return cls.load(outputs[0])

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @staticmethod
    def normalize(text: str) -> str:
        """ALBERT's preprocessing of raw text, applied before SentencePiece (module docstring)."""
        text = text.replace("``", '"').replace("''", '"')
        if text.isascii():  # fast path: NFKD leaves ASCII alone
            return " ".join(text.split()).lower()
        text = " ".join("".join(char.lower() for char in text).split())
        text = unicodedata.normalize("NFKD", text)
        return "".join(char for char in text if not unicodedata.combining(char)).lower()

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without [CLS]/[SEP]."""
        return self._fix_digit_commas(self._sp.EncodeAsIds(self.normalize(text)))

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        """`encode` over many texts at once (SentencePiece's batch path is much faster)."""
        normalized = [self.normalize(text) for text in texts]
        batch = self._sp.Encode(normalized, out_type=int, num_threads=num_threads)
        return [self._fix_digit_commas(ids) for ids in batch]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`. Control pieces ([CLS], [SEP], [MASK]) and <pad> appear by name, each
        set off by spaces, so an example reads as the model sees it."""
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            i = int(i)
            if self._is_control(i):
                parts += [self._sp.DecodeIds(run), self._sp.IdToPiece(i)]
                run = []
            else:
                run.append(i)
        parts.append(self._sp.DecodeIds(run))
        return " ".join(part for part in parts if part)

    def id_to_piece(self, i: int) -> str:
        """The vocabulary piece of id `i`, e.g. "▁the"."""
        return self._sp.IdToPiece(int(i))

    def piece_to_id(self, piece: str) -> int:
        """The id of a vocabulary piece; `unk_id` if the piece is not in the vocabulary."""
        return self._sp.PieceToId(piece)

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self._model, "path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model"], state["path"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Tokenizer({self._name}, vocab_size={self.vocab_size})"

    @property
    def _name(self) -> str:
        return repr(str(self.path)) if self.path is not None else "<in-memory model>"

    def _is_control(self, i: int) -> bool:
        return self._sp.IsControl(i) or i == self.pad_id

    def _fix_digit_commas(self, ids: list[int]) -> list[int]:
        """The original's digit-comma rule: "▁1999," becomes "▁1999" + "," (re-encoded)."""
        if self._digit_comma_ids.isdisjoint(ids):
            return ids
        fixed: list[int] = []
        for i in ids:
            if i not in self._digit_comma_ids:
                fixed.append(i)
                continue
            piece = self._sp.IdToPiece(i)
            pieces = self._sp.EncodeAsPieces(piece[:-1].replace(WORD_BOUNDARY, ""))
            # Re-encoding adds a word boundary that the piece did not have: take it off again.
            if not piece.startswith(WORD_BOUNDARY) and pieces[0].startswith(WORD_BOUNDARY):
                pieces = pieces[1:] if pieces[0] == WORD_BOUNDARY else [pieces[0][1:], *pieces[1:]]
            fixed.extend(self._sp.PieceToId(p) for p in [*pieces, piece[-1]])
        return fixed


def _starts_word(piece: str) -> bool:
    return (
        piece.startswith((WORD_BOUNDARY, "<"))
        or piece in _PUNCTUATION
        or any(c.lower() not in _ENGLISH_LETTERS and c not in _PUNCTUATION for c in piece)
    )


def _ends_in_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


def _training_sentences(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    for item in inputs:
        lines = sentences(TextFiles([item])) if isinstance(item, os.PathLike) else item.splitlines()
        for line in lines:
            normalized = Tokenizer.normalize(line)
            if normalized:
                yield normalized
