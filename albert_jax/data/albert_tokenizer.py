"""`AlbertTokenizer`: transformers' AlbertTokenizer interface, for fine-tuning and for users.

It wraps the pretraining `Tokenizer` (albert_jax.data.tokenizer), which owns the SentencePiece
model and the one implementation of ALBERT's preprocessing; this module adds what the model's
inputs need: [CLS]/[SEP] layout, token types, truncation, padding, batches, special-token names
in the text, directories to load from and save to.

Its ids equal those of transformers 4.x's slow (sentencepiece) `AlbertTokenizer` on the same
.model and options, for single texts, pairs, batches, every padding and truncation mode. Where
transformers logs an error and returns a sequence longer than `max_length` (a truncation that
cannot be done), this raises `InputError` instead.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from etils.epath import Path

from albert_jax import storage
from albert_jax.data.tokenizer import SPECIAL_PIECES, Tokenizer
from albert_jax.errors import InputError

HF_MODEL_FILE = "spiece.model"  # Hugging Face directories, and the trainer's workdir
ORIGINAL_MODEL_FILE = "30k-clean.model"  # the original google-research releases
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
# Every ALBERT has 512 positions; transformers' "no limit" (1e30) is read as this too.
DEFAULT_MODEL_MAX_LENGTH = 512

_PADDING = {"do_not_pad": None, "longest": "longest", "max_length": "max_length"}
_TRUNCATION = {"do_not_truncate": None, "longest_first": "longest_first",
               "only_first": "only_first", "only_second": "only_second"}
_PREPROCESSING_OPTIONS = ("do_lower_case", "remove_space", "keep_accents")


class AlbertTokenizer:
    """ALBERT's tokenizer with the interface of transformers' `AlbertTokenizer`.

    A wrapper, not a subclass, of the pretraining `Tokenizer` (attribute `tokenizer`): that
    class keeps the preprocessing (lowercasing, accents, quotes, spaces, the digit-comma rule)
    and the offsets back to the original text, so there is one implementation of each, while
    the two `encode`/`decode` methods keep the meaning each caller expects.

    Special-token names written in the text ("[MASK]", "[SEP]", "<pad>", ...) become those
    tokens, as in transformers (including its lowercasing first, so "<PAD>" is <pad> too). With
    `split_special_tokens=True` they stay plain text, as in the pretraining `Tokenizer` and the
    original ALBERT code.

    Attributes:
      tokenizer: the wrapped pretraining `Tokenizer`.
      model_max_length: the `max_length` used when truncation or padding="max_length" asks for
        one and none is given.
      split_special_tokens: as above.
      pad_token, unk_token, cls_token, sep_token, mask_token: the special pieces' names.

    Picklable, so data-loader worker processes can use it.
    """

    pad_token, unk_token, cls_token, sep_token, mask_token = SPECIAL_PIECES

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
        split_special_tokens: bool = False,
    ) -> None:
        """Wraps a pretraining `Tokenizer` (its preprocessing options included); most callers
        want `from_pretrained`."""
        self.tokenizer = tokenizer
        self.model_max_length = model_max_length
        self.split_special_tokens = split_special_tokens
        self._special_ids = {name.lower(): tokenizer.piece_to_id(name) for name in SPECIAL_PIECES}
        exact = "|".join(re.escape(name) for name in SPECIAL_PIECES if name != name.lower())
        # transformers lowercases the text (special names excepted) before it looks for special
        # names, so any casing of the lowercase ones counts; IGNORECASE matches exactly the
        # characters whose lowercase is theirs (the Kelvin sign for k included).
        lower = "|".join(re.escape(name) for name in SPECIAL_PIECES if name == name.lower())
        self._special_pattern = re.compile(
            f"{exact}|(?i:{lower})" if tokenizer.do_lower_case else f"{exact}|{lower}"
        )

    # -- loading and saving ------------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike[str],
        *,
        do_lower_case: bool | None = None,
        remove_space: bool | None = None,
        keep_accents: bool | None = None,
        model_max_length: int | None = None,
        split_special_tokens: bool | None = None,
    ) -> AlbertTokenizer:
        """Loads from a directory or a .model file.

        `path` may be: a Hugging Face directory or an albert_jax workdir (spiece.model, with
        tokenizer_config.json if present for the options below); an original ALBERT release
        directory (30k-clean.model, lowercased); or a SentencePiece .model file (ALBERT's
        defaults). Keyword arguments that are not None override what the directory says.
        """
        path = Path(path)
        options: dict[str, Any] = {}
        if path.is_dir():
            model_file = path / HF_MODEL_FILE
            if model_file.is_file():
                if (path / CONFIG_FILE).is_file():
                    options = _read_config(path / CONFIG_FILE)
            elif (path / ORIGINAL_MODEL_FILE).is_file():
                model_file = path / ORIGINAL_MODEL_FILE
            else:
                raise InputError(
                    f"{str(path)!r} holds no tokenizer: looked for {HF_MODEL_FILE} (Hugging Face "
                    f"directory or albert_jax workdir) and {ORIGINAL_MODEL_FILE} (original ALBERT "
                    "release); or pass the SentencePiece .model file itself"
                )
        elif path.is_file():
            model_file = path
        else:
            raise InputError(
                f"tokenizer {str(path)!r} does not exist; expected a SentencePiece .model file or "
                f"a directory with {HF_MODEL_FILE} or {ORIGINAL_MODEL_FILE}"
            )
        overrides = {"do_lower_case": do_lower_case, "remove_space": remove_space,
                     "keep_accents": keep_accents, "model_max_length": model_max_length,
                     "split_special_tokens": split_special_tokens}
        options.update({key: value for key, value in overrides.items() if value is not None})
        preprocessing = {key: options.pop(key) for key in _PREPROCESSING_OPTIONS if key in options}
        return cls(Tokenizer.load(model_file, **preprocessing), **options)

    def save_pretrained(self, directory: str | os.PathLike[str]) -> None:
        """Writes spiece.model, tokenizer_config.json and special_tokens_map.json, which
        transformers' AlbertTokenizer (and AutoTokenizer) load with the same ids."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        storage.write_atomically(directory / HF_MODEL_FILE, self.tokenizer.model_bytes)
        names = {"bos_token": self.cls_token, "eos_token": self.sep_token,
                 "unk_token": self.unk_token, "sep_token": self.sep_token,
                 "pad_token": self.pad_token, "cls_token": self.cls_token}
        # transformers' AlbertTokenizer lets [MASK] take the whitespace before it (lstrip).
        mask = {"content": self.mask_token, "lstrip": True, "normalized": False,
                "rstrip": False, "single_word": False}
        config = {
            "tokenizer_class": "AlbertTokenizer",
            **{key: getattr(self.tokenizer, key) for key in _PREPROCESSING_OPTIONS},
            "split_special_tokens": self.split_special_tokens,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": False,
            **names,
            "mask_token": self.mask_token,
            "added_tokens_decoder": {
                str(self._special_ids[name.lower()]): {
                    **mask, "content": name, "lstrip": name == self.mask_token, "special": True}
                for name in SPECIAL_PIECES
            },
        }
        _write_json(directory / CONFIG_FILE, config)
        _write_json(directory / SPECIAL_TOKENS_MAP_FILE, {**names, "mask_token": mask})

    # -- vocabulary --------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def __len__(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_id

    @property
    def unk_token_id(self) -> int:
        return self.tokenizer.unk_id

    @property
    def cls_token_id(self) -> int:
        return self.tokenizer.cls_id

    @property
    def sep_token_id(self) -> int:
        return self.tokenizer.sep_id

    @property
    def mask_token_id(self) -> int:
        return self.tokenizer.mask_id

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        """Id of a piece, or ids of a list of pieces; pieces not in the vocabulary give <unk>."""
        if isinstance(tokens, str):
            return self.tokenizer.piece_to_id(tokens)
        return [self.tokenizer.piece_to_id(token) for token in tokens]

    def convert_ids_to_tokens(
        self, ids: int | Sequence[int], skip_special_tokens: bool = False
    ) -> str | list[str]:
        """Piece of an id, or pieces of a list of ids (without the special ones if asked)."""
        if isinstance(ids, (int, np.integer)):
            return self.tokenizer.id_to_piece(int(ids))
        return [self.tokenizer.id_to_piece(i) for i in self._kept(ids, skip_special_tokens)]

    # -- encoding ----------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The pieces of `text`, e.g. ["▁the", "▁cat"], without [CLS]/[SEP]."""
        return [self.tokenizer.id_to_piece(i) for i in self._encode(text, offsets=False)[0]]

    def encode(
        self, text: str, text_pair: str | None = None, *, add_special_tokens: bool = True
    ) -> list[int]:
        """Ids of one text or pair: [CLS] A [SEP] (B [SEP]), or just the pieces' ids."""
        first = self._encode(text, offsets=False)[0]
        second = None if text_pair is None else self._encode(text_pair, offsets=False)[0]
        if add_special_tokens:
            return self._build(first, second)[0]
        return first + (second or [])

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of `text` without [CLS]/[SEP], and for each the span (start, end) of the original
        `text` it stands for, whitespace excluded (see `Tokenizer.encode_with_offsets`).
        A special-token name in the text spans that name."""
        return self._encode(text, offsets=True)

    def __call__(
        self,
        text: str | Sequence[str] | Sequence[Sequence[str]],
        text_pair: str | Sequence[str] | None = None,
        *,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        return_tensors: str | None = None,
        return_offsets_mapping: bool = False,
    ) -> dict[str, Any]:
        """Model inputs for one text, one pair, or a batch, as transformers computes them.

        `text` is a str, a list of str, or a list of (first, second) pairs; `text_pair` a str or
        a list of str of the same length. Layout [CLS] A [SEP] (B [SEP]); token_type_ids are 0
        up to the first [SEP], 1 after it.

        padding: False / "do_not_pad"; True / "longest" (the batch's longest); "max_length".
        truncation: True / "longest_first" (one token at a time from the longer text, the
          second on ties, as the original's `_truncate_seq_pair`), "only_first", "only_second",
          False / "do_not_truncate". None (the default) means "longest_first" when `max_length`
          is given and `padding` is False, else no truncation, as in transformers.
        max_length: defaults to `model_max_length` where truncation or "max_length" padding
          needs one. pad_to_multiple_of rounds the padded length up.
        return_tensors: None (lists) or "np" (int32 arrays [batch, length]; a single text gets
          a batch of one). return_offsets_mapping adds "offset_mapping": each token's (start,
          end) in its own text, (0, 0) for special and padding tokens.

        Returns a dict with input_ids, token_type_ids, attention_mask (and offset_mapping).
        Raises InputError for unknown options, a truncation that cannot reach `max_length`, or
        arrays asked for sequences of different lengths.
        """
        batched, examples = _as_examples(text, text_pair)
        padding_mode = _option("padding", padding, _PADDING)
        truncation_mode = _option("truncation", truncation, _TRUNCATION)
        if truncation is None and max_length is not None and padding is False:
            truncation_mode = "longest_first"
        if return_tensors not in (None, "np"):
            raise InputError(f"return_tensors={return_tensors!r} is not supported; use None or 'np'")
        if max_length is None and (truncation_mode or padding_mode == "max_length"):
            max_length = self.model_max_length
        for name, value in (("max_length", max_length), ("pad_to_multiple_of", pad_to_multiple_of)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        if truncation_mode and padding_mode and pad_to_multiple_of and max_length % pad_to_multiple_of:
            # transformers refuses this too: padding would undo the truncation.
            raise InputError(f"max_length={max_length} is not a multiple of "
                             f"pad_to_multiple_of={pad_to_multiple_of}, as truncation with padding needs")

        rows = []
        for index, (first_text, second_text) in enumerate(examples):
            first, first_spans = self._encode(first_text, return_offsets_mapping)
            second, second_spans = (
                self._encode(second_text, return_offsets_mapping) if second_text is not None
                else (None, None)
            )
            if truncation_mode:
                keep_first, keep_second = _truncated_lengths(
                    len(first), None if second is None else len(second), max_length,
                    truncation_mode, f"example {index}: " if batched else "")
                first, first_spans = first[:keep_first], first_spans[:keep_first]
                if second is not None:
                    second, second_spans = second[:keep_second], second_spans[:keep_second]
            ids, token_types = self._build(first, second)
            row = {"input_ids": ids, "token_type_ids": token_types, "attention_mask": [1] * len(ids)}
            if return_offsets_mapping:
                none = [(0, 0)]
                row["offset_mapping"] = (
                    none + first_spans + none + (second_spans + none if second is not None else []))
            rows.append(row)

        if padding_mode:
            target = (max(map(len, (row["input_ids"] for row in rows)), default=0)
                      if padding_mode == "longest" else max_length)
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            fill = {"input_ids": self.pad_token_id, "token_type_ids": 0, "attention_mask": 0,
                    "offset_mapping": (0, 0)}
            for row in rows:
                for key, values in row.items():
                    values.extend([fill[key]] * (target - len(values)))
        keys = ["input_ids", "token_type_ids", "attention_mask"] + (
            ["offset_mapping"] if return_offsets_mapping else [])
        if return_tensors == "np":
            lengths = {len(row["input_ids"]) for row in rows}
            if len(lengths) > 1:
                raise InputError(
                    f"return_tensors='np' needs sequences of one length, these have {min(lengths)} "
                    f"to {max(lengths)} tokens; pass padding=True or padding='max_length'")
            return {key: np.array([row[key] for row in rows], dtype=np.int32).reshape(
                len(rows), max(lengths, default=0), *((2,) if key == "offset_mapping" else ()))
                for key in keys}
        if batched:
            return {key: [row[key] for row in rows] for key in keys}
        return rows[0]

    # -- decoding ----------------------------------------------------------------------------

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of `ids`. With skip_special_tokens, <pad>, <unk>, [CLS], [SEP] and [MASK] are
        left out and the text equals transformers'. Without, they appear by name, each set off by
        spaces (where transformers glues some to the word before)."""
        return self.tokenizer.decode(self._kept(ids, skip_special_tokens), unk_by_name=True).strip()

    def batch_decode(self, sequences: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        """`decode` of each sequence."""
        return [self.decode(ids, skip_special_tokens) for ids in sequences]

    def __repr__(self) -> str:
        t = self.tokenizer
        source = str(t.path) if t.path is not None else "<in-memory model>"
        return (f"AlbertTokenizer({source!r}, vocab_size={t.vocab_size}, "
                f"do_lower_case={t.do_lower_case}, model_max_length={self.model_max_length})")

    # -- internals ---------------------------------------------------------------------------

    def _kept(self, ids: Sequence[int], skip_special_tokens: bool) -> list[int]:
        ids = [int(i) for i in ids]
        if not skip_special_tokens:
            return ids
        special = set(self._special_ids.values())
        return [i for i in ids if i not in special]

    def _build(self, first: list[int], second: list[int] | None) -> tuple[list[int], list[int]]:
        """(input_ids, token_type_ids) of [CLS] first [SEP] (second [SEP])."""
        ids = [self.cls_token_id, *first, self.sep_token_id]
        if second is None:
            return ids, [0] * len(ids)
        return ids + second + [self.sep_token_id], [0] * len(ids) + [1] * (len(second) + 1)

    def _encode(self, text: str, offsets: bool) -> tuple[list[int], list[tuple[int, int]]]:
        """Ids of `text` without [CLS]/[SEP], and their spans (empty unless `offsets`)."""
        if not isinstance(text, str):
            raise InputError(f"expected a text (str), got {type(text).__name__} {text!r:.80}")
        ids: list[int] = []
        spans: list[tuple[int, int]] = []
        for start, end, special in self._segments(text):
            if special is not None:
                ids.append(special)
                spans.append((start, end))
            elif offsets:
                more, more_spans = self.tokenizer.encode_with_offsets(text[start:end])
                ids += more
                spans += [(a + start, b + start) for a, b in more_spans]
            else:
                ids += self.tokenizer.encode(text[start:end])
        return ids, spans

    def _segments(self, text: str) -> Iterator[tuple[int, int, int | None]]:
        """`text` cut at special-token names: (start, end, the special's id, or None for text)."""
        if self.split_special_tokens:
            yield 0, len(text), None
            return
        position = 0
        for match in self._special_pattern.finditer(text):
            end = match.start()
            name = match.group().lower()
            if name == self.mask_token.lower():  # [MASK] takes the whitespace before it
                while end > position and text[end - 1].isspace():
                    end -= 1
            yield position, end, None
            yield match.start(), match.end(), self._special_ids[name]
            position = match.end()
        yield position, len(text), None


def _as_examples(
    text: Any, text_pair: Any
) -> tuple[bool, list[tuple[str, str | None]]]:
    """(whether a batch was given, its (first, second-or-None) texts)."""
    if isinstance(text, str):
        if text_pair is not None and not isinstance(text_pair, str):
            raise InputError(f"text is one str, so text_pair must be a str too, got "
                             f"{type(text_pair).__name__}")
        return False, [(text, text_pair)]
    if not isinstance(text, (list, tuple)):
        raise InputError(f"text must be a str, a list of str or a list of (str, str) pairs, got "
                         f"{type(text).__name__}")
    if text_pair is not None:
        if isinstance(text_pair, str) or not isinstance(text_pair, (list, tuple)) or len(text_pair) != len(text):
            raise InputError(f"text is a list of {len(text)}, so text_pair must be a list of "
                             f"{len(text)} str too, got {type(text_pair).__name__} {text_pair!r:.80}")
        return True, list(zip(text, text_pair, strict=True))
    examples = []
    for index, item in enumerate(text):
        if isinstance(item, str):
            examples.append((item, None))
        elif isinstance(item, (list, tuple)) and len(item) == 2:
            examples.append((item[0], item[1]))
        else:
            raise InputError(f"text[{index}] must be a str or a (str, str) pair, got {item!r:.80}")
    return True, examples


def _option(name: str, value: Any, choices: dict[str, str | None]) -> str | None:
    """A padding/truncation argument as a mode name (None: off); True is the first mode."""
    if value is None or value is False:
        return None
    if value is True:
        return next(mode for mode in choices.values() if mode)
    if isinstance(value, str) and value in choices:
        return choices[value]
    allowed = ", ".join(["True", "False", *map(repr, choices)])
    raise InputError(f"{name}={value!r} is not one of {allowed}")


def _truncated_lengths(
    first: int, second: int | None, max_length: int, mode: str, where: str
) -> tuple[int, int]:
    """How many tokens of each text stay so that the whole sequence fits `max_length`."""
    second_length = second or 0
    budget = max_length - (2 if second is None else 3)  # [CLS] A [SEP] (B [SEP])
    if budget < 0:
        raise InputError(f"{where}max_length={max_length} leaves no room for the text: "
                         f"[CLS] and [SEP] take {max_length - budget} tokens")
    if mode == "only_second" and second is None:
        raise InputError(f"{where}truncation='only_second' needs a second text (text_pair)")
    excess = first + second_length - budget
    if excess <= 0:
        return first, second_length
    if mode == "longest_first" and second is not None:
        while first + second_length > budget:
            if first > second_length:
                first -= 1
            else:
                second_length -= 1
        return first, second_length
    # One text is cut; like transformers, never to nothing.
    cut_second = mode == "only_second"
    length = second_length if cut_second else first
    if length <= excess:
        which = "second text" if cut_second else "first text" if second is not None else "text"
        raise InputError(
            f"{where}truncation={mode!r} cannot fit max_length={max_length}: {excess} tokens must "
            f"go and the {which} has only {length} (it is never cut to nothing); use "
            "truncation='longest_first' or a larger max_length")
    return (first, second_length - excess) if cut_second else (first - excess, second_length)


def _read_config(path: Path) -> dict[str, Any]:
    """The options of a tokenizer_config.json that bear on encoding, checked."""
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{str(path)!r} is not JSON: {error.msg} at line {error.lineno}") from error
    if not isinstance(config, dict):
        raise InputError(f"{str(path)!r} must hold a JSON object")
    options: dict[str, Any] = {}
    for key in (*_PREPROCESSING_OPTIONS, "split_special_tokens"):
        if key in config:
            if not isinstance(config[key], bool):
                raise InputError(f"{str(path)!r}: {key} must be true or false, got {config[key]!r}")
            options[key] = config[key]
    if "model_max_length" in config:
        value = config["model_max_length"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
            raise InputError(f"{str(path)!r}: model_max_length must be a positive integer, got {value!r}")
        if value < 2**31:
            options["model_max_length"] = int(value)
    expected = {"unk_token": "<unk>", "sep_token": "[SEP]", "pad_token": "<pad>",
                "cls_token": "[CLS]", "mask_token": "[MASK]"}
    for key, name in expected.items():
        value = config.get(key, name)
        content = value.get("content") if isinstance(value, dict) else value
        if content != name:
            raise InputError(f"{str(path)!r}: {key} is {content!r}; AlbertTokenizer supports "
                             f"ALBERT's special tokens only ({key} {name!r})")
    return options


def _write_json(path: Path, value: dict[str, Any]) -> None:
    storage.write_atomically(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")
