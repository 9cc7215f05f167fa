"""SentencePiece tokenizer with ALBERT's preprocessing, trained with ALBERT's recipe.

Encoding gives the ids of transformers 4.x's slow `AlbertTokenizer` (default options) on the
same .model file, for any text, with one deliberate difference: special-token names written in
the text ("[MASK]", "[CLS]", "<pad>", ...) are plain text here, as in the original
`create_pretraining_data.py`, whereas transformers turns them into the special ids. Corpus text
that mentions "[MASK]" must not put a real mask into the data.

Preprocessing, as in transformers, whose option names it takes (defaults ALBERT's:
`do_lower_case=True, remove_space=True, keep_accents=False`): LaTeX quotes `` and '' become ";
lowercasing, character by character as transformers does (so a word-final capital sigma becomes
σ, not ς); whitespace runs become one space and the ends are stripped; NFKD decomposition with
combining marks dropped (accents go); a last lowercasing for what NFKD uncovered. Then
SentencePiece applies the model's own normalisation (nmt_nfkc for ALBERT's models), and a piece
ending in digit + comma ("▁1999,") is split before its comma, as the original
`tokenization.encode_pieces` does.

`encode_with_offsets` maps every id back to the characters of the ORIGINAL text. That works
because the preprocessing is local: whitespace only separates words, a word's normalisation is
the concatenation of its characters' (quote pairs excepted, and the rare context-dependent
lowercasing), so each normalised character can be traced to the original characters that made it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm
from etils import epath

from albert_jax import storage
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
_WORD = re.compile(r"\S+")  # what str.split() separates: the same Unicode whitespace


class Tokenizer:
    """A SentencePiece model plus ALBERT's text preprocessing.

    Attributes:
      pad_id, unk_id, cls_id, sep_id, mask_id: ids of the special pieces, looked up by name.
      word_start: bool [vocab_size], True where a piece starts a word by the original's rule
        (above); special pieces count as word starts.
      fingerprint: sha256 of the model bytes; prepared data records it. The preprocessing
        options are not part of it: pretraining always uses the defaults.
      path: the .model file, if loaded from one.
      do_lower_case, remove_space, keep_accents: the preprocessing options (module docstring).

    Picklable (it carries the model bytes), so data-loader worker processes can use it.
    """

    def __init__(
        self,
        model: bytes,
        path: str | os.PathLike[str] | None = None,
        *,
        do_lower_case: bool = True,
        remove_space: bool = True,
        keep_accents: bool = False,
    ) -> None:
        """Wraps serialized SentencePiece model bytes; `path` only names it in messages."""
        self.path = epath.Path(path) if path is not None else None
        self.do_lower_case, self.remove_space, self.keep_accents = (
            do_lower_case, remove_space, keep_accents)
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
    def load(cls, path: str | os.PathLike[str], **options: bool) -> Tokenizer:
        """Loads a .model file: ours, the original ALBERT 30k-clean.model, or any SentencePiece
        model that has the special pieces. `options`: the preprocessing keywords of `__init__`."""
        try:
            model = epath.Path(path).read_bytes()
        except OSError as error:
            raise InputError(f"cannot read tokenizer {str(path)!r}: {error.strerror}") from error
        return cls(model, path, **options)

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
        original. Refuses to overwrite existing output files, and input without a sentence.
        The prefix may be in Cloud Storage (`gs://`): the model is trained in a local scratch
        directory, and the .model object is uploaded last.
        """
        local = storage.is_local(output_prefix)
        prefix = Path(output_prefix) if local else epath.Path(output_prefix)
        outputs = [prefix.with_name(prefix.name + suffix) for suffix in (".model", ".vocab")]
        for output in outputs:
            if output.exists():
                raise InputError(f"{str(output)!r} exists; remove it or choose another prefix")
        text = _TrainingText(inputs)
        sentences = iter(text)
        first = next(sentences, None)  # before any output exists; may raise InputError itself
        if first is None:
            raise InputError(f"no sentences found in {text.description}")
        try:
            if local:
                prefix.parent.mkdir(parents=True, exist_ok=True)
            # Train under a temporary name, then rename (an upload is whole by itself): an
            # interrupted run leaves no half model.
            scratch_directory = tempfile.TemporaryDirectory(dir=prefix.parent if local else None,
                                                            prefix=".tokenizer-")
        except OSError as error:
            # mkdir says "File exists" of a parent that is a file.
            reason = "a file, not a directory" if isinstance(error, FileExistsError) else error.strerror
            raise InputError(f"cannot write {str(prefix.parent)!r}: {reason}") from error
        with scratch_directory as scratch:
            scratch_prefix = Path(scratch, "model")
            try:
                spm.SentencePieceTrainer.Train(
                    sentence_iterator=itertools.chain([first], sentences),
                    model_prefix=str(scratch_prefix),
                    vocab_size=vocab_size,
                    input_sentence_size=input_sentence_size,
                    num_threads=num_threads or os.cpu_count() or 1,
                    minloglevel=1,
                    **_TRAINER_FLAGS,
                )
            except RuntimeError as error:  # e.g. a vocabulary larger than the text allows
                if text.error is not None:  # raised while reading, e.g. a corrupt .gz, Ctrl-C
                    raise text.error from None
                # Drop SentencePiece's "INTERNAL: src/file.cc(744) [condition] " prefix.
                reason = str(error).rsplit("] ", 1)[-1].strip() or str(error).strip()
                raise InputError(f"tokenizer training failed: {reason}") from error
            # The .model last: where it exists, both do.
            for suffix, output in ((".vocab", outputs[1]), (".model", outputs[0])):
                if local:
                    os.replace(scratch_prefix.with_suffix(suffix), output)
                else:
                    try:
                        output.write_bytes(scratch_prefix.with_suffix(suffix).read_bytes())
                    except OSError as error:  # e.g. no such bucket, no permission
                        raise InputError(f"cannot write {str(output)!r}: {error}") from error
        return cls.load(outputs[0])

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def model_bytes(self) -> bytes:
        """The serialized SentencePiece model: the bytes of its .model file."""
        return self._model

    @staticmethod
    def normalize(
        text: str, *, do_lower_case: bool = True, remove_space: bool = True, keep_accents: bool = False
    ) -> str:
        """ALBERT's preprocessing of raw text, applied before SentencePiece (module docstring)."""
        text = text.replace("``", '"').replace("''", '"')
        if text.isascii():  # fast path: NFKD leaves ASCII alone, and lowercasing is per character
            text = " ".join(text.split()) if remove_space else text
            return text.lower() if do_lower_case else text
        if do_lower_case:
            text = "".join(char.lower() for char in text)
        if remove_space:
            text = " ".join(text.split())
        if not keep_accents:
            text = unicodedata.normalize("NFKD", text)
            text = "".join(char for char in text if not unicodedata.combining(char))
        return text.lower() if do_lower_case else text

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without [CLS]/[SEP]."""
        return self._fix_digit_commas(self._sp.EncodeAsIds(self._normalize(text)))

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """`encode(text)`, and for each id the span (start, end) of `text` that it stands for.

        Spans index the original `text`, before any preprocessing, and exclude whitespace: a
        piece "▁cafe" from "  Café" spans "Café". A lone "▁" spans nothing, at the start of the
        text that follows it. Where one original character becomes several pieces ("ﬁ" -> f, i)
        or normalisation needs context (quote pairs), the pieces share that character's span.
        """
        normalized, starts, ends = self._normalize_aligned(text)
        encoded = self._sp.Encode(normalized, out_type="offset_mapping")
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for i, (begin, end) in zip(encoded["ids"], encoded["offsets"], strict=True):
            parts = (
                self._digit_comma_parts(i, begin, end, normalized)
                if i in self._digit_comma_ids
                else [(i, begin, end)]
            )
            for part, begin, end in parts:
                ids.append(part)
                if begin == end:  # nothing of the text, e.g. the "▁" SentencePiece prepends
                    at = starts[begin] if begin < len(starts) else len(text)
                    spans.append((at, at))
                    continue
                start, stop = starts[begin], ends[end - 1]
                while start < stop and text[start].isspace():
                    start += 1
                while stop > start and text[stop - 1].isspace():
                    stop -= 1
                spans.append((start, stop) if start < stop else (stop, stop))
        return ids, spans

    def encode_batch(self, texts: Sequence[str], num_threads: int = 1) -> list[list[int]]:
        """`encode` over many texts at once (SentencePiece's batch path is much faster)."""
        normalized = [self._normalize(text) for text in texts]
        batch = self._sp.Encode(normalized, out_type=int, num_threads=num_threads)
        return [self._fix_digit_commas(ids) for ids in batch]

    def decode(self, ids: Iterable[int], *, unk_by_name: bool = False) -> str:
        """Text of `ids`. Control pieces ([CLS], [SEP], [MASK]) and <pad> appear by name, each
        set off by spaces, so an example reads as the model sees it; so does <unk> if
        `unk_by_name`, else it is SentencePiece's " ⁇ "."""
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            i = int(i)
            if self._is_control(i) or (unk_by_name and i == self.unk_id):
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
        return {"model": self._model, "path": self.path, **self._options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state.pop("model"), state.pop("path"), **state)  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Tokenizer({self._name}, vocab_size={self.vocab_size})"

    @property
    def _name(self) -> str:
        return repr(str(self.path)) if self.path is not None else "<in-memory model>"

    @property
    def _options(self) -> dict[str, bool]:
        return {"do_lower_case": self.do_lower_case, "remove_space": self.remove_space,
                "keep_accents": self.keep_accents}

    def _normalize(self, text: str) -> str:
        return self.normalize(text, **self._options)

    def _normalize_aligned(self, text: str) -> tuple[str, list[int], list[int]]:
        """`_normalize(text)`, and for each of its characters the span of `text` it comes from
        (as two lists: starts and ends).

        Built word by word (a word's normalisation does not depend on its neighbours, and the
        one space between two words stands for the whitespace between them), then unit by unit
        inside a word: a unit is the shortest run of characters whose normalisation continues
        the word's, usually one character, two for a quote pair; the word's last unit takes
        whatever remains. A unit that normalises to nothing (a combining accent) joins the
        span of the unit before it, or of the one after it at the start of a word.
        """
        words = [m.span() for m in _WORD.finditer(text)] if self.remove_space else [(0, len(text))]
        parts: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for n, (start, end) in enumerate(words):
            if n:
                parts.append(" ")
                starts.append(words[n - 1][1])
                ends.append(start)
            word = self._normalize(text[start:end])
            parts.append(word)
            if len(word) == end - start and text[start:end].isascii():
                # ASCII changes only by lowercasing, character for character, or by quote pairs,
                # which would have shortened it.
                starts.extend(range(start, end))
                ends.extend(range(start + 1, end + 1))
                continue
            first = len(starts)  # of this word's characters
            unit_start, position, j = start, 0, start
            while j < end:
                k, produced = end, len(word) - position
                for candidate in range(j + 1, end):
                    unit = self._normalize(text[j:candidate])
                    if word.startswith(unit, position):
                        k, produced = candidate, len(unit)
                        break
                if produced:
                    starts.extend([unit_start] * produced)
                    ends.extend([k] * produced)
                    unit_start = k
                elif len(starts) > first:  # extend the previous unit over this one
                    previous, index = ends[-1], len(ends) - 1
                    while index >= first and ends[index] == previous:
                        ends[index] = k
                        index -= 1
                    unit_start = k
                position += produced
                j = k
        return "".join(parts), starts, ends

    def _is_control(self, i: int) -> bool:
        return self._sp.IsControl(i) or i == self.pad_id

    def _split_digit_comma(self, piece: str) -> list[str]:
        """The original's digit-comma rule: "▁1999," becomes "▁1999" + "," (re-encoded)."""
        pieces = self._sp.EncodeAsPieces(piece[:-1].replace(WORD_BOUNDARY, ""))
        # Re-encoding adds a word boundary that the piece did not have: take it off again.
        if not piece.startswith(WORD_BOUNDARY) and pieces[0].startswith(WORD_BOUNDARY):
            pieces = pieces[1:] if pieces[0] == WORD_BOUNDARY else [pieces[0][1:], *pieces[1:]]
        return [*pieces, piece[-1]]

    def _fix_digit_commas(self, ids: list[int]) -> list[int]:
        if self._digit_comma_ids.isdisjoint(ids):
            return ids
        fixed: list[int] = []
        for i in ids:
            if i not in self._digit_comma_ids:
                fixed.append(i)
                continue
            fixed.extend(self._sp.PieceToId(p) for p in self._split_digit_comma(self._sp.IdToPiece(i)))
        return fixed

    def _digit_comma_parts(
        self, i: int, begin: int, end: int, normalized: str
    ) -> list[tuple[int, int, int]]:
        """`_split_digit_comma` of piece `i`, which spans normalized[begin:end], as (id, begin,
        end): the comma keeps the last character, the others share the rest by length."""
        *pieces, comma = self._split_digit_comma(self._sp.IdToPiece(i))
        cursor = begin + len(normalized[begin : end - 1]) - len(normalized[begin : end - 1].lstrip())
        parts = []
        for piece in pieces:
            stop = min(cursor + len(piece.lstrip(WORD_BOUNDARY)), end - 1)
            parts.append((self._sp.PieceToId(piece), cursor, stop))
            cursor = stop
        return [*parts, (self._sp.PieceToId(comma), end - 1, end)]


def _starts_word(piece: str) -> bool:
    return (
        piece.startswith((WORD_BOUNDARY, "<"))
        or piece in _PUNCTUATION
        or any(c.lower() not in _ENGLISH_LETTERS and c not in _PUNCTUATION for c in piece)
    )


def _ends_in_digit_comma(piece: str) -> bool:
    return len(piece) > 1 and piece[-1] == "," and piece[-2].isdigit()


class _TrainingText:
    """The normalized, non-empty sentences of `Tokenizer.train`'s inputs, as they stream by.

    SentencePiece's trainer turns any exception raised while it iterates into a RuntimeError
    of its own, traceback in the message; `error` keeps the original, to be raised instead.
    """

    def __init__(self, inputs: Iterable[str | os.PathLike[str]]) -> None:
        self._inputs = inputs
        self._files: list[str] = []
        self._texts = 0
        self.error: BaseException | None = None

    @property
    def description(self) -> str:
        """The inputs read so far, for messages."""
        names = [repr(name) for name in self._files[:1]]
        others = len(self._files) - len(names) + self._texts
        if names:
            return names[0] + (f" and {others} other input(s)" if others else "")
        return "the given text"

    def __iter__(self) -> Iterator[str]:
        try:
            for item in self._inputs:
                if isinstance(item, os.PathLike):
                    self._files.append(os.fspath(item))
                    lines: Iterable[str] = sentences(TextFiles([item]))
                else:
                    self._texts += 1
                    lines = item.splitlines()
                for line in lines:
                    normalized = Tokenizer.normalize(line)
                    if normalized:
                        yield normalized
        except GeneratorExit:  # closed by its consumer: no error
            raise
        except BaseException as error:
            self.error = error
            raise
