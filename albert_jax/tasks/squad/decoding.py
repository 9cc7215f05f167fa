"""From per-window model outputs to one answer per question, and the no-answer threshold.

Each head proposes spans per window (`simple_spans`: the best `n_best_size` starts times the best
`n_best_size` ends by logit; `beam_spans`: the albert_v2 head's beam). A span counts if it lies
in the window's context, starts at a token this window scores (the max-context rule), ends no
earlier than it starts, and is at most `max_answer_length` tokens long. A question's spans from
all its windows are ranked by score (start + end); the best `n_best_size` distinct answer texts,
cut from the original context by character offsets, are its n-best.

SQuAD 2.0 adds a no-answer score per question (higher: less answerable), written to
null_odds.json: for the simple head, the [CLS] span's score (the smallest over the windows) less
the best span's, as BERT and Hugging Face compute it; for the albert_v2 head, its answerability
logit (the smallest over the windows), as the original. A question is answered "" when its score
exceeds the null threshold: a number given in the config, or the one that maximises F1 on the
dev set (the official evaluation's sweep), as the original tuned it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from albert_jax.tasks import squad_metrics
from albert_jax.tasks.squad.features import Features, Window

# The no-answer score of a question with no valid span at all in any window: certainly none.
NO_SPAN_SCORE = 1e6


@dataclasses.dataclass(frozen=True)
class Span:
    """A candidate answer: sequence positions in one window and their scores."""

    start: int
    end: int
    start_score: float
    end_score: float

    @property
    def score(self) -> float:
        return self.start_score + self.end_score


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A question's answers: its best non-empty answer ("" when it has none), its n-best
    entries (as nbest_predictions.json writes them) and its no-answer score."""

    qid: str
    text: str
    nbest: list[dict[str, float | str]]
    null_score: float


def _allowed(window: Window, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of a sequence of `length` where this window's answers may start and end."""
    ends = np.zeros(length, bool)
    ends[window.offset:window.offset + window.length] = True
    starts = ends.copy()
    starts[window.offset:window.offset + window.length] = window.max_context
    return starts, ends


def _valid(window: Window, start: int, end: int, max_answer_length: int) -> bool:
    first = window.offset
    return (first <= start <= end < first + window.length and window.max_context[start - first]
            and end - start + 1 <= max_answer_length)


def simple_spans(window: Window, start_logits: np.ndarray, end_logits: np.ndarray, *,
                 n_best_size: int, max_answer_length: int) -> list[Span]:
    """Spans of the simple head from one window's logits [length]; positions where nothing may
    start or end are left out before the best are taken (the original filters after)."""
    starts, ends = _allowed(window, len(start_logits))
    best_starts = _best(start_logits, starts, n_best_size)
    best_ends = _best(end_logits, ends, n_best_size)
    # Every pair lies in the window with its start scored here; what remains is order and length.
    length = best_ends[None, :] - best_starts[:, None] + 1
    return [Span(int(best_starts[i]), int(best_ends[j]), float(start_logits[best_starts[i]]),
                 float(end_logits[best_ends[j]]))
            for i, j in zip(*np.nonzero((length >= 1) & (length <= max_answer_length)))]


def _best(scores: np.ndarray, allowed: np.ndarray, count: int) -> np.ndarray:
    positions = np.flatnonzero(allowed)
    return positions[np.argsort(-scores[positions], kind="stable")[:count]]


def beam_spans(window: Window, start_top_log_probs: np.ndarray, start_top_index: np.ndarray,
               end_top_log_probs: np.ndarray, end_top_index: np.ndarray, *,
               max_answer_length: int) -> list[Span]:
    """Spans of the albert_v2 head's beam: start i's ends are at i * end_n_top + j."""
    end_n_top = len(end_top_index) // len(start_top_index)
    spans = []
    for i, (start, start_score) in enumerate(zip(start_top_index, start_top_log_probs)):
        for j in range(i * end_n_top, (i + 1) * end_n_top):
            if _valid(window, int(start), int(end_top_index[j]), max_answer_length):
                spans.append(Span(int(start), int(end_top_index[j]), float(start_score), float(end_top_log_probs[j])))
    return spans


def best_answers(examples: Sequence, features: Features, spans: Sequence[list[Span]],
                 null_scores: np.ndarray, *, n_best_size: int, score_names: tuple[str, str],
                 null_minus_best: bool) -> list[Prediction]:
    """One `Prediction` per example from the spans and null scores of its windows (in the order
    of `features.windows`). `score_names` name a span's two scores in the n-best entries;
    `null_minus_best` subtracts the best span's score from the null score (the simple head)."""
    by_question: list[list[int]] = [[] for _ in examples]
    for w, window in enumerate(features.windows):
        by_question[window.question].append(w)
    predictions = []
    for example, windows in zip(examples, by_question):
        ranked = sorted(((span, w) for w in windows for span in spans[w]), key=lambda pair: -pair[0].score)
        nbest, seen = [], set()
        for span, w in ranked:
            if len(nbest) == n_best_size:
                break
            start, end = features.char_span(w, span.start, span.end)
            text = example.context[start:end]
            if text and text not in seen:
                seen.add(text)
                nbest.append((text, span))
        null = float(np.min(null_scores[windows]))
        if nbest and null_minus_best:
            null -= nbest[0][1].score
        elif not nbest:
            null = NO_SPAN_SCORE
        probabilities = _softmax([span.score for _, span in nbest])
        entries = [{"text": text, "probability": p, score_names[0]: span.start_score, score_names[1]: span.end_score}
                   for (text, span), p in zip(nbest, probabilities)]
        predictions.append(Prediction(example.qid, nbest[0][0] if nbest else "", entries, null))
    return predictions


def _softmax(scores: list[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(score - top) for score in scores]
    return [e / sum(exps) for e in exps]


def answered(predictions: Sequence[Prediction], threshold: float | None) -> dict[str, str]:
    """Question id -> answer text, "" where the no-answer score exceeds `threshold` (None: every
    question answered, SQuAD 1.1)."""
    return {p.qid: "" if threshold is not None and p.null_score > threshold else p.text for p in predictions}


def tune_threshold(gold: squad_metrics.SquadDataset, predictions: Sequence[Prediction]) -> float:
    """The null threshold of the best dev F1, as the official evaluation's sweep finds it.

    The sweep lets questions answer in order of rising no-answer score and reports the score of
    the last one answered, or 0.0 when answering none is best, which suits probabilities but not
    these scores. So it is run on ranks (1, 2, ...), and the rank found is mapped back to its
    question's score, or to below every score when none is answered.
    """
    order = sorted(predictions, key=lambda p: p.null_score)
    ranks = {p.qid: float(rank) for rank, p in enumerate(order, start=1)}
    best = squad_metrics.evaluate(gold, answered(predictions, None), ranks)["best_f1_thresh"]
    if best == 0.0:
        return order[0].null_score - 1.0
    return order[int(best) - 1].null_score
