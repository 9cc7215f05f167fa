"""ALBERT pretraining examples in numpy: sentence-order (SOP) pairs and n-gram masks.

The algorithm follows `create_pretraining_data.py` of google-research/ALBERT
(`create_instances_from_document`, `create_masked_lm_predictions`, `truncate_seq_pair`), with
every option of that script as a field of `PretrainingDataConfig`. Where this module differs,
on purpose:

- Every random draw comes from the `np.random.Generator` passed in, so an example is a pure
  function of the seed (the original drew n-gram lengths from numpy's unseeded global RNG).
  `document_rng(seed, epoch, index)` gives each document of each pass its own generator: any
  pass over any document can be recomputed on its own, and masks differ from pass to pass
  (dynamic masking) instead of being stored `dupe_factor` times.
- `[CLS]` and `[SEP]` end a word. The original let a continuation piece at the start of
  segment B (left there by front truncation) join the last word of segment A across the
  `[SEP]`; here it starts its own word. N-grams of words still run across the `[SEP]` as in
  the original.
- The random other document of the single-sentence fallback is drawn among non-empty
  documents (the original removed empty ones beforehand, which a streamed corpus cannot do).

Masking shortfalls (fewer predictions than the budget) happen, as in the original, only when
the greedy pass over all shuffled candidate spans cannot fill the budget: every remaining
candidate overlaps a masked span or has more pieces than the budget has left. The tests bound
how often this happens.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from albert_jax.errors import InputError

if TYPE_CHECKING:  # this module needs numpy only at run time
    from albert_jax.data.tokenizer import Tokenizer

# [CLS], [SEP] and [SEP] around the two segments.
_NUM_SPECIAL_TOKENS = 3


@dataclasses.dataclass(frozen=True)
class PretrainingDataConfig:
    """Every option of the original `create_pretraining_data.py`, plus the seed and packing.

    The defaults are the original's flags (`random_seed` there is `seed` here). `packing` puts
    up to `max_examples_per_row` examples in each row of a batch (see `data.packing`); it
    changes the batch contract (`example_shapes`), not the examples.
    """

    max_seq_length: int = 512
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    ngram: int = 3
    favor_shorter_ngram: bool = True
    do_permutation: bool = False
    do_whole_word_mask: bool = True
    short_seq_prob: float = 0.1
    random_next_sentence: bool = False
    seed: int = 12345
    packing: bool = False
    max_examples_per_row: int = 8

    def __post_init__(self) -> None:
        if self.max_seq_length < _NUM_SPECIAL_TOKENS + 2:
            raise InputError(f"max_seq_length must be at least 5, got {self.max_seq_length}")
        if self.max_predictions_per_seq < 1:
            raise InputError(f"max_predictions_per_seq must be positive, got {self.max_predictions_per_seq}")
        if not 0.0 <= self.masked_lm_prob <= 1.0:
            raise InputError(f"masked_lm_prob must be in [0, 1], got {self.masked_lm_prob}")
        if self.ngram < 1:
            raise InputError(f"ngram must be at least 1, got {self.ngram}")
        if not 0.0 <= self.short_seq_prob <= 1.0:
            raise InputError(f"short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        if not 0 <= self.seed < 2**32:
            raise InputError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.max_examples_per_row < 1:
            raise InputError(f"max_examples_per_row must be positive, got {self.max_examples_per_row}")

    @property
    def num_prediction_slots(self) -> int:
        """Width P of the masked-LM fields; permutation adds as many slots again."""
        return self.max_predictions_per_seq * (2 if self.do_permutation else 1)

    @property
    def packed_prediction_slots(self) -> int:
        """Width of the masked-LM fields of a packed row: enough for any K examples that fit.

        An example of n tokens gets at most max(1, round(n * masked_lm_prob)) <= n * prob + 1
        predictions per masking pass, so K examples sharing S tokens get at most S * prob + K:
        the packer never has to start a new row for want of prediction slots.
        """
        passes = 2 if self.do_permutation else 1
        per_pass = math.ceil(self.max_seq_length * self.masked_lm_prob) + self.max_examples_per_row
        return passes * min(per_pass, self.max_examples_per_row * self.max_predictions_per_seq)

    def ngram_probabilities(self) -> np.ndarray:
        """P(n) for n = 1..ngram: proportional to 1/n, reversed unless favouring short ones."""
        weights = 1.0 / np.arange(1, self.ngram + 1)
        if not self.favor_shorter_ngram:
            weights = weights[::-1]
        return weights / weights.sum()

    @functools.cached_property
    def _ngram_cumulative(self) -> np.ndarray:
        cumulative = np.cumsum(self.ngram_probabilities())
        cumulative /= cumulative[-1]  # exactly 1 at the end: every draw in [0, 1) finds an n
        return cumulative


@dataclasses.dataclass(frozen=True, eq=False)
class Vocab:
    """What example creation needs from a tokenizer, as plain picklable values.

    `word_start[id]` is True where the piece `id` begins a word (the original's
    `_is_start_piece` rule for SentencePiece vocabularies).
    """

    size: int
    pad_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    word_start: np.ndarray

    def __post_init__(self) -> None:
        if self.word_start.shape != (self.size,):
            raise InputError(f"word_start has shape {self.word_start.shape}, expected ({self.size},)")

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> Vocab:
        """Reads the ids and the word-start table from an `albert_jax.data.tokenizer.Tokenizer`."""
        return cls(
            size=int(tokenizer.vocab_size),
            pad_id=int(tokenizer.pad_id),
            cls_id=int(tokenizer.cls_id),
            sep_id=int(tokenizer.sep_id),
            mask_id=int(tokenizer.mask_id),
            word_start=np.asarray(tokenizer.word_start, dtype=bool),
        )


class SentencePair(NamedTuple):
    """Segments A and B of one example.

    `label` 1 means B does not follow A: the two were swapped, or B comes from another
    document (`b_is_random`: the single-sentence fallback, or `random_next_sentence`).
    """

    tokens_a: np.ndarray
    tokens_b: np.ndarray
    label: int
    b_is_random: bool


class MaskedLm(NamedTuple):
    """Masking of one token sequence.

    `spans` holds one row per n-gram span of the masking pass (not the permutation pass):
    the position of its first token, its length in words, and the length in words drawn
    for it (longer where the sequence ended or the budget forced a shorter n-gram).
    """

    input_ids: np.ndarray
    positions: np.ndarray
    labels: np.ndarray
    spans: np.ndarray


def document_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one document in one pass over the data."""
    return np.random.default_rng((seed, epoch, index))


def _sentences(document: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Flat token ids and sentence start offsets (length n+1), empty sentences dropped."""
    token_ids = np.asarray(document["token_ids"])
    lengths = np.asarray(document["sentence_lengths"])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # The original skipped lines that tokenized to nothing.
    return token_ids, np.unique(offsets)


def truncate_seq_pair(
    tokens_a: np.ndarray, tokens_b: np.ndarray, max_num_tokens: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Shortens the pair to `max_num_tokens` as the original does, without its per-token loop.

    The original removes one token at a time from the longer segment (B on ties), from the
    front or the back with equal probability. Which segment loses each token depends only
    on the lengths, so the final lengths have a closed form, and the number of front
    removals of a segment is Binomial(removals, 1/2).
    """
    len_a, len_b = len(tokens_a), len(tokens_b)
    excess = len_a + len_b - max_num_tokens
    if excess <= 0:
        return tokens_a, tokens_b
    gap = abs(len_a - len_b)
    if excess <= gap:
        cut_a, cut_b = (excess, 0) if len_a > len_b else (0, excess)
    else:
        # Once equal, B loses the first token (tie) and then they alternate.
        rest = excess - gap
        shorter = min(len_a, len_b)
        final_a, final_b = shorter - rest // 2, shorter - (rest + 1) // 2
        cut_a, cut_b = len_a - final_a, len_b - final_b
    front_a, front_b = rng.binomial((cut_a, cut_b), 0.5)
    return (
        tokens_a[front_a : len_a - (cut_a - front_a)],
        tokens_b[front_b : len_b - (cut_b - front_b)],
    )


def _random_continuation(
    document: tuple[np.ndarray, np.ndarray],
    documents: Sequence[Mapping[str, np.ndarray]],
    document_index: int,
    target_length: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Segment B for the random-next case: consecutive sentences of another document.

    `document` is the current one as `_sentences` returns it: the fallback when 10 draws
    found no other non-empty document (the original also stopped after 10 draws).
    """
    token_ids, offsets = document
    for _ in range(10):
        index = int(rng.integers(len(documents)))
        if index == document_index:
            continue
        other_ids, other_offsets = _sentences(documents[index])
        if len(other_offsets) > 1:
            token_ids, offsets = other_ids, other_offsets
            break
    num_sentences = len(offsets) - 1
    first = int(rng.integers(num_sentences))
    # Whole sentences from `first` until B reaches the target length (at least one).
    end = int(np.searchsorted(offsets, offsets[first] + target_length, side="left"))
    end = min(max(end, first + 1), num_sentences)
    return token_ids[offsets[first] : offsets[end]]


def create_sentence_pairs(
    document: Mapping[str, np.ndarray],
    documents: Sequence[Mapping[str, np.ndarray]],
    document_index: int,
    config: PretrainingDataConfig,
    rng: np.random.Generator,
) -> list[SentencePair]:
    """All SOP pairs of one document in one pass (the original's `create_instances_from_document`).

    Sentences are gathered into chunks of about a target length (`max_seq_length - 3`, or
    with probability `short_seq_prob` a uniform length in [2, max_seq_length - 3]). Segment A
    is the first k sentences of a chunk and B the rest, swapped with probability 1/2. A chunk
    of one sentence takes B from a random other document (label 1), as does any chunk with
    probability 1/2 under `random_next_sentence`; then the sentences of the chunk that B did
    not use go back to start the next chunk.

    `document` is `documents[document_index]`: a dict with `token_ids` (flat) and
    `sentence_lengths`. `documents` (random access: `len`, `[i]`) is read only for that
    random other document.
    """
    token_ids, offsets = _sentences(document)
    num_sentences = len(offsets) - 1
    max_num_tokens = config.max_seq_length - _NUM_SPECIAL_TOKENS
    target_length = max_num_tokens
    if rng.random() < config.short_seq_prob:
        target_length = int(rng.integers(2, max_num_tokens + 1))

    pairs = []
    first = 0  # first sentence of the current chunk
    last = 0  # sentence being added to it
    while last < num_sentences:
        chunk_length = offsets[last + 1] - offsets[first]
        if last == num_sentences - 1 or chunk_length >= target_length:
            chunk_size = last + 1 - first
            a_size = int(rng.integers(1, chunk_size)) if chunk_size >= 2 else 1
            split = offsets[first + a_size]
            tokens_a = token_ids[offsets[first] : split]
            b_is_random = chunk_size == 1 or (config.random_next_sentence and rng.random() < 0.5)
            if b_is_random:
                label = 1
                tokens_b = _random_continuation(
                    (token_ids, offsets),
                    documents,
                    document_index,
                    target_length - len(tokens_a),
                    rng,
                )
                last -= chunk_size - a_size
            elif not config.random_next_sentence and rng.random() < 0.5:
                label = 1
                tokens_a, tokens_b = token_ids[split : offsets[last + 1]], tokens_a
            else:
                label = 0
                tokens_b = token_ids[split : offsets[last + 1]]
            tokens_a, tokens_b = truncate_seq_pair(tokens_a, tokens_b, max_num_tokens, rng)
            pairs.append(SentencePair(tokens_a, tokens_b, label, b_is_random))
            first = last + 1
        last += 1
    return pairs


def masking_budget(num_tokens: int, config: PretrainingDataConfig) -> int:
    """How many positions to mask in a sequence of `num_tokens` (specials included)."""
    if config.masked_lm_prob == 0:
        return 0
    # round() is round-half-even, as in the original.
    return min(config.max_predictions_per_seq, max(1, round(num_tokens * config.masked_lm_prob)))


def _choose_spans(
    word_bounds: list[int],
    taken: bytearray,
    order: list[int],
    lengths: list[int],
    budget: int,
) -> list[tuple[int, int, int]]:
    """The original's greedy pass: (first word, word count, drawn count) of each span it keeps.

    Visits candidate spans starting at the words in `order`, each with its drawn length in
    words. A span that would overshoot the budget falls back to shorter n-grams, and is
    skipped if even one word overshoots or if it overlaps a word in `taken`. Marks the
    words of kept spans in `taken`.
    """
    num_words = len(word_bounds) - 1
    kept = []
    count = 0
    for first, length in zip(order, lengths):
        if count >= budget:
            break
        end = min(first + length, num_words)
        while end - first > 1 and count + word_bounds[end] - word_bounds[first] > budget:
            end -= 1
        size = word_bounds[end] - word_bounds[first]
        if count + size > budget or any(taken[first:end]):
            continue
        taken[first:end] = b"\x01" * (end - first)
        kept.append((first, end - first, length))
        count += size
    return kept


def create_masked_lm_predictions(
    tokens: np.ndarray,
    maskable: np.ndarray,
    config: PretrainingDataConfig,
    vocab: Vocab,
    rng: np.random.Generator,
) -> MaskedLm:
    """N-gram whole-word masking of one sequence (the original's `create_masked_lm_predictions`).

    `maskable` is False at `[CLS]`/`[SEP]`. Candidates are words (or single pieces without
    `do_whole_word_mask`), taken in random order as the start of an n-gram of 1..`ngram`
    words. Each masked position becomes `[MASK]` with probability 0.8, stays itself with 0.1,
    and becomes a uniformly random vocabulary id with 0.1. With `do_permutation`, a second
    set of spans, disjoint from the first, has its tokens shuffled among its positions and is
    predicted too. Positions come back sorted.
    """
    output = tokens.copy()
    budget = masking_budget(len(tokens), config)
    candidates = np.flatnonzero(maskable)
    if budget == 0 or len(candidates) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return MaskedLm(output, empty, tokens[empty], np.zeros((0, 3), dtype=np.int64))

    if config.do_whole_word_mask:
        follows_special = ~np.concatenate(([False], maskable[:-1]))[candidates]
        starts = vocab.word_start[tokens[candidates]] | follows_special
        starts[0] = True
        word_firsts = np.flatnonzero(starts)
    else:
        word_firsts = np.arange(len(candidates))
    num_words = len(word_firsts)
    bounds = word_firsts.tolist() + [len(candidates)]

    def draw_spans(taken: bytearray) -> tuple[list[tuple[int, int, int]], np.ndarray]:
        """Spans of one greedy pass, and their positions in order."""
        order = rng.permutation(num_words).tolist()
        lengths = config._ngram_cumulative.searchsorted(rng.random(num_words), side="right")
        spans = _choose_spans(bounds, taken, order, (lengths + 1).tolist(), budget)
        pieces = [candidates[bounds[first] : bounds[first + words]] for first, words, _ in spans]
        return spans, np.sort(np.concatenate(pieces)) if pieces else np.zeros(0, np.int64)

    masked_words = bytearray(num_words)
    spans, positions = draw_spans(masked_words)
    labels = tokens[positions]
    replace = rng.random(len(positions))
    random_ids = rng.integers(0, vocab.size, len(positions), dtype=tokens.dtype)
    output[positions] = np.where(replace < 0.8, vocab.mask_id, np.where(replace < 0.9, labels, random_ids))

    if config.do_permutation:
        _, selected = draw_spans(bytearray(masked_words))
        output[selected] = tokens[rng.permutation(selected)]
        positions = np.sort(np.concatenate([positions, selected]))
        labels = tokens[positions]

    span_array = np.array(spans, dtype=np.int64).reshape(-1, 3)
    span_array[:, 0] = candidates[word_firsts[span_array[:, 0]]]
    return MaskedLm(output, positions, labels, span_array)


def layout_pair(pair: SentencePair, vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """`[CLS] A [SEP] B [SEP]` as int32 ids, and which of its positions may be masked."""
    len_a, len_b = len(pair.tokens_a), len(pair.tokens_b)
    length = len_a + len_b + _NUM_SPECIAL_TOKENS
    tokens = np.empty(length, dtype=np.int32)
    tokens[0] = vocab.cls_id
    tokens[1 : len_a + 1] = pair.tokens_a
    tokens[len_a + 1] = vocab.sep_id
    tokens[len_a + 2 : length - 1] = pair.tokens_b
    tokens[length - 1] = vocab.sep_id
    maskable = np.ones(length, dtype=bool)
    maskable[[0, len_a + 1, length - 1]] = False
    return tokens, maskable


# Every field of a pretraining batch is int32.
BATCH_DTYPE = np.int32


def example_shapes(config: PretrainingDataConfig) -> dict[str, tuple[int, ...]]:
    """The pretraining batch contract: each field's shape in one row, in the order the fields
    are documented and printed. A batch adds a leading batch axis to each.

    Without packing a row is one example (`single_example_shapes`). With `config.packing` a
    row holds up to K = `max_examples_per_row` examples one after another: `segment_ids`
    numbers each token's example (1..K, 0 for padding), `position_ids` restart at 0 for each
    example, the masked-LM fields (`packed_prediction_slots` wide) index the row, and the
    sentence-order fields hold one entry per example: its label, its weight (1 for an example,
    0 for an unused entry) and `cls_positions`, where its [CLS] sits.
    """
    if not config.packing:
        return single_example_shapes(config)
    length, examples = (config.max_seq_length,), (config.max_examples_per_row,)
    slots = (config.packed_prediction_slots,)
    return {
        "input_ids": length,
        "attention_mask": length,
        "segment_ids": length,
        "token_type_ids": length,
        "position_ids": length,
        "masked_lm_positions": slots,
        "masked_lm_ids": slots,
        "masked_lm_weights": slots,
        "sentence_order_label": examples,
        "sentence_order_weights": examples,
        "cls_positions": examples,
    }


def single_example_shapes(config: PretrainingDataConfig) -> dict[str, tuple[int, ...]]:
    """The fields of one example padded to the row: the batch contract without packing."""
    length, slots = (config.max_seq_length,), (config.num_prediction_slots,)
    return {
        "input_ids": length,
        "attention_mask": length,
        "token_type_ids": length,
        "masked_lm_positions": slots,
        "masked_lm_ids": slots,
        "masked_lm_weights": slots,
        "sentence_order_label": (),
    }


def make_example(
    pair: SentencePair, masked: MaskedLm, config: PretrainingDataConfig, vocab: Vocab
) -> dict[str, np.ndarray]:
    """The batch fields of one laid-out, masked pair, padded to their fixed widths."""
    length = len(masked.input_ids)
    num_masked = len(masked.positions)
    example = {name: np.zeros(shape, BATCH_DTYPE) for name, shape in single_example_shapes(config).items()}
    example["input_ids"][:] = vocab.pad_id
    example["input_ids"][:length] = masked.input_ids
    example["attention_mask"][:length] = 1
    example["token_type_ids"][len(pair.tokens_a) + 2 : length] = 1
    example["masked_lm_positions"][:num_masked] = masked.positions
    example["masked_lm_ids"][:num_masked] = masked.labels
    example["masked_lm_weights"][:num_masked] = 1
    example["sentence_order_label"][...] = pair.label
    return example


def document_examples(
    document: Mapping[str, np.ndarray],
    documents: Sequence[Mapping[str, np.ndarray]],
    document_index: int,
    epoch: int,
    config: PretrainingDataConfig,
    vocab: Vocab,
) -> list[dict[str, np.ndarray]]:
    """Every example of `documents[document_index]` (passed in as `document`) in pass `epoch`.

    A pure function of its arguments: the generator comes from (seed, epoch, index).
    """
    rng = document_rng(config.seed, epoch, document_index)
    examples = []
    for pair in create_sentence_pairs(document, documents, document_index, config, rng):
        tokens, maskable = layout_pair(pair, vocab)
        masked = create_masked_lm_predictions(tokens, maskable, config, vocab, rng)
        examples.append(make_example(pair, masked, config, vocab))
    return examples
