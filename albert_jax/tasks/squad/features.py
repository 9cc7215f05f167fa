"""SQuAD questions as model inputs: `[CLS] question [SEP] window [SEP]`, one per window.

As the original (`squad_utils.convert_examples_to_features`): the question keeps its first
`max_query_length` tokens; a context too long for one sequence is cut into windows whose starts
are `doc_stride` tokens apart (the step between window starts: Hugging Face's `stride` is the
overlap instead); a token in several windows is scored only in the one where it has the most
context (the larger of its smaller side, ties to the longer window, then the first); a training
window without the answer is labelled with the [CLS] position (0, 0), as is every window of an
unanswerable question.

Answers map to tokens through the tokenizer's exact character spans of the original context
(not the original's approximate longest-common-subsequence alignment): the answer's first and
last tokens are the first and last whose text overlaps it. Special-token names in the text
("[SEP]") are text here, as in the original.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from albert_jax.tasks.finetune import Encoded
from albert_jax.tasks.squad.reader import SquadExample

log = logging.getLogger("albert_jax")

# How many question ids a warning names.
_SHOWN_IDS = 5


@dataclasses.dataclass(frozen=True)
class Window:
    """One model input: a slice of a question's context tokens.

    `max_context[i]` says whether this window scores its i-th context token as an answer start.
    """

    question: int  # the index of its question among the examples
    offset: int  # the sequence position of its first context token
    doc_start: int  # its first context token's index among the context's tokens
    max_context: np.ndarray  # [its context tokens] bool

    @property
    def length(self) -> int:
        return len(self.max_context)


@dataclasses.dataclass(frozen=True)
class Features:
    """The windows of some questions and what decoding needs to read answers off them.

    `spans[q]` is [tokens, 2]: each context token's (start, end) character span in question q's
    context (questions about the same context share one array). `encoded` holds the model
    inputs, one row per window, in the order of `windows`, with `start_positions`,
    `end_positions` and `is_impossible` (the window holds no answer) for training.
    """

    windows: list[Window]
    spans: list[np.ndarray]
    encoded: Encoded

    def char_span(self, w: int, start: int, end: int) -> tuple[int, int]:
        """The characters of its context that window w's sequence positions start..end hold."""
        window = self.windows[w]
        spans = self.spans[window.question]
        first = window.doc_start - window.offset  # + a sequence position = a context token index
        return int(spans[start + first, 0]), int(spans[end + first, 1])


def window_starts(num_tokens: int, room: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) of each window over `num_tokens` context tokens, `room` per window. An
    empty context gets one empty window, so every question gets a prediction."""
    windows, start = [], 0
    while True:
        length = min(num_tokens - start, room)
        windows.append((start, length))
        if start + length >= num_tokens:
            return windows
        start += min(length, doc_stride)


def max_context(windows: Sequence[tuple[int, int]], num_tokens: int) -> list[np.ndarray]:
    """For each window, whether each of its tokens has its most context there (see the module
    docstring): min(left, right) + 0.01 * window length, the first window on ties."""
    score = np.full((len(windows), num_tokens), -np.inf)
    for w, (start, length) in enumerate(windows):
        position = np.arange(length)
        score[w, start:start + length] = np.minimum(position, length - 1 - position) + 0.01 * length
    best = np.argmax(score, axis=0)  # the first maximum
    return [best[start:start + length] == w for w, (start, length) in enumerate(windows)]


def answer_tokens(spans: np.ndarray, answer: tuple[int, int]) -> tuple[int, int] | None:
    """The first and last token whose text overlaps the character span `answer`, or None."""
    start, end = answer
    overlapping = np.flatnonzero((spans[:, 0] < end) & (spans[:, 1] > start) & (spans[:, 1] > spans[:, 0]))
    if not len(overlapping):
        return None
    return int(overlapping[0]), int(overlapping[-1])


def make_features(tokenizer, examples: Sequence[SquadExample], *, max_length: int,
                  max_query_length: int, doc_stride: int) -> Features:
    """The windows of `examples` (an `AlbertTokenizer` tokenizes them). Training examples whose
    answer no token covers are left out, and a warning names them."""
    pieces = tokenizer.tokenizer  # plain text: special-token names are not special here
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    contexts: dict[str, tuple[list[int], np.ndarray]] = {}
    windows: list[Window] = []
    spans: list[np.ndarray] = []
    fields: dict[str, list[np.ndarray]] = {"input_ids": [], "attention_mask": [], "token_type_ids": []}
    labels: list[tuple[int, int, int]] = []  # (start position, end position, is_impossible)
    unaligned = []
    for index, example in enumerate(examples):
        if example.context not in contexts:
            ids, offsets = pieces.encode_with_offsets(example.context)
            contexts[example.context] = (ids, np.asarray(offsets, np.int64).reshape(-1, 2))
        context_ids, context_spans = contexts[example.context]
        spans.append(context_spans)
        answer = None
        if example.answer_span is not None:
            answer = answer_tokens(context_spans, example.answer_span)
            if answer is None:
                unaligned.append(example.qid)
                continue
        question = pieces.encode(example.question)[:max_query_length]
        offset = len(question) + 2  # [CLS] question [SEP]
        room = max_length - offset - 1  # ... [SEP]
        starts = window_starts(len(context_ids), room, doc_stride)
        for (start, length), scored in zip(starts, max_context(starts, len(context_ids))):
            ids = [cls_id, *question, sep_id, *context_ids[start:start + length], sep_id]
            fields["input_ids"].append(np.asarray(ids, np.int32))
            fields["attention_mask"].append(np.ones(len(ids), np.int32))
            fields["token_type_ids"].append((np.arange(len(ids)) >= offset).astype(np.int32))
            windows.append(Window(index, offset, start, scored))
            inside = answer is not None and start <= answer[0] and answer[1] < start + length
            labels.append((offset + answer[0] - start, offset + answer[1] - start, 0) if inside else (0, 0, 1))
    if unaligned:
        log.warning("%d of %d training questions have an answer that no token of the context covers; "
                    "they are left out of training: %s", len(unaligned),
                    len(examples), ", ".join(repr(qid) for qid in unaligned[:_SHOWN_IDS]))
    columns = np.asarray(labels, np.int32).reshape(-1, 3)
    encoded = Encoded(tokens=fields,
                      values={"start_positions": columns[:, 0], "end_positions": columns[:, 1],
                              "is_impossible": columns[:, 2]},
                      pad={"input_ids": tokenizer.pad_token_id, "attention_mask": 0, "token_type_ids": 0})
    return Features(windows, spans, encoded)
