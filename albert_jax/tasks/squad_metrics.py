"""SQuAD evaluation that gives the official v1.1 and v2.0 scripts' numbers, to the last bit.

The official scripts (https://rajpurkar.github.io/SQuAD-explorer/) score a predicted answer
text against each gold answer text and keep the best: exact match of the normalised texts
(lowercased, punctuation removed, the words a/an/the removed, whitespace squeezed) and F1 of
their bags of words. Scores are means over questions, in percent. The two versions differ:

- v1.1 reports `exact_match` and `f1`. Two answers that normalise to nothing have F1 0. A
  question without a prediction scores 0 (logged here, printed there).
- v2.0 adds unanswerable questions (no gold answers), whose one correct answer is "" (a gold
  answer that normalises to nothing counts as ""; two empty answers have F1 1). It reports
  `exact`, `f1`, `total` and the same for the `HasAns_` and `NoAns_` questions. With a no-answer
  probability per question, a question whose probability exceeds `na_prob_thresh` is taken as
  answered "" and the best threshold is searched: `best_exact`, `best_f1` and their thresholds,
  as the official sweep finds them (ties in probability are taken in the probability file's
  order, as its stable sort does). A missing prediction stops the official script (KeyError
  after a "Missing prediction" message), so it is an InputError here.

Inputs the scripts would crash on or silently misjudge are an InputError naming the file and
the offending id: malformed dataset JSON, duplicate question ids, predictions that are not
strings, and predictions made for another dataset (most of their ids unknown while most
questions go unanswered).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import re
import string
from collections.abc import Mapping
from typing import Any

from albert_jax.errors import InputError
from albert_jax.tasks.files import read_text

V1 = "1.1"
V2 = "2.0"
VERSIONS = (V1, V2)

logger = logging.getLogger(__name__)

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


@dataclasses.dataclass(frozen=True)
class SquadDataset:
    """The gold answers of a SQuAD dataset file, and which official script's rules apply.

    `answers` maps each question id, in file order, to its gold answer texts; an empty tuple is
    an unanswerable question (v2.0 only).
    """

    source: str
    version: str
    answers: dict[str, tuple[str, ...]]


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation, drop the words a/an/the, squeeze whitespace (in that order)."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> int:
    """1 if the two texts are equal once normalised, else 0 (both versions)."""
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_score(prediction: str, gold: str, version: str = V2) -> float:
    """F1 of the normalised texts' bags of words.

    When either side has no words, v2.0 gives 1.0 if both have none (a correct "no answer") and
    0.0 otherwise; v1.1 gives 0.0.
    """
    if version not in VERSIONS:
        raise InputError(f"unknown SQuAD version {version!r}; choose one of {', '.join(VERSIONS)}")
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(gold).split(), version)


def _token_f1(predicted: list[str], gold: list[str], version: str) -> float:
    if version == V2 and not (predicted and gold):
        return float(predicted == gold)
    shared = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(gold)
    # The official scripts' formula, term for term, so the floats agree to the last bit.
    return (2 * precision * recall) / (precision + recall)


def evaluate(
    dataset: SquadDataset,
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float | int]:
    """The official metrics of `dataset.version` for `predictions` (question id -> answer text).

    `na_probs` (question id -> probability of no answer) and `na_prob_thresh` apply to v2.0 only.
    """
    unknown = [qid for qid in predictions if qid not in dataset.answers]
    missing = [qid for qid in dataset.answers if qid not in predictions]
    if 2 * len(unknown) > len(predictions) and 2 * len(missing) > len(dataset.answers):
        raise InputError(
            f"the predictions are not for {dataset.source}: {len(unknown)} of their {len(predictions)} "
            f"question ids are not in it, e.g. {unknown[0]!r}"
        )
    if dataset.version == V1:
        if na_probs is not None:
            raise InputError(f"{dataset.source} is SQuAD 1.1, which has no no-answer probabilities")
        return _evaluate_v1(dataset, predictions, missing)
    if missing:
        raise InputError(
            f"question {missing[0]!r} of {dataset.source} has no prediction ({len(missing)} of "
            f"{len(dataset.answers)} have none); the official SQuAD 2.0 script stops here too. "
            'Predict "" for no answer.'
        )
    return _evaluate_v2(dataset, predictions, na_probs, na_prob_thresh)


def _evaluate_v1(dataset: SquadDataset, predictions: Mapping[str, str], missing: list[str]) -> dict[str, float]:
    if missing:
        logger.warning(
            "%d of %d questions of %s have no prediction and score 0, e.g. %r",
            len(missing),
            len(dataset.answers),
            dataset.source,
            missing[0],
        )
    exact = f1 = 0.0
    for qid, golds in dataset.answers.items():
        if qid in predictions:
            exact += max(exact_match(predictions[qid], gold) for gold in golds)
            f1 += max(f1_score(predictions[qid], gold, V1) for gold in golds)
    total = len(dataset.answers)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def _evaluate_v2(
    dataset: SquadDataset,
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None,
    na_prob_thresh: float,
) -> dict[str, float | int]:
    has_answer = {qid: bool(golds) for qid, golds in dataset.answers.items()}
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for qid, golds in dataset.answers.items():
        # Gold answers that normalise to nothing leave "" as the only correct answer.
        golds = [gold for gold in golds if normalize_answer(gold)] or [""]
        exact_raw[qid] = max(exact_match(predictions[qid], gold) for gold in golds)
        f1_raw[qid] = max(f1_score(predictions[qid], gold, V2) for gold in golds)

    if na_probs is None:
        probs: Mapping[str, float] = dict.fromkeys(dataset.answers, 0.0)  # as the official default
    else:
        probs = na_probs
        unscored = next((qid for qid in dataset.answers if qid not in na_probs), None)
        if unscored is not None:
            raise InputError(f"question {unscored!r} of {dataset.source} has no no-answer probability")

    def thresholded(raw: dict[str, float]) -> dict[str, float]:
        # Above the threshold the answer is taken to be "": right exactly when there is none.
        return {qid: float(not has_answer[qid]) if probs[qid] > na_prob_thresh else score for qid, score in raw.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)
    metrics: dict[str, float | int] = _means(exact, f1, list(dataset.answers))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, answerable in has_answer.items() if answerable == wanted]
        if qids:
            metrics.update({f"{prefix}_{name}": value for name, value in _means(exact, f1, qids).items()})
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, threshold = _best_threshold(raw, predictions, na_probs, has_answer)
            metrics[f"best_{name}"] = best
            metrics[f"best_{name}_thresh"] = threshold
    return metrics


def _means(exact: dict[str, float], f1: dict[str, float], qids: list[str]) -> dict[str, float | int]:
    return {
        "exact": 100.0 * sum(exact[qid] for qid in qids) / len(qids),
        "f1": 100.0 * sum(f1[qid] for qid in qids) / len(qids),
        "total": len(qids),
    }


def _best_threshold(
    raw: dict[str, float],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float],
    has_answer: dict[str, bool],
) -> tuple[float, float]:
    """The official sweep: the best score over thresholds at each question's no-answer probability.

    It starts from "every question unanswered" and lets questions answer in order of rising
    probability. An unanswerable question given a non-empty text loses its point whatever that
    text normalises to, as in the official sweep.
    """
    score = best = float(sum(not answerable for answerable in has_answer.values()))
    best_threshold = 0.0
    for qid in sorted(na_probs, key=na_probs.__getitem__):
        if qid not in raw:
            continue
        if has_answer[qid]:
            score += raw[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, best_threshold = score, na_probs[qid]
    return 100.0 * best / len(raw), best_threshold


def parse_dataset(dataset_json: Any, source: str = "the dataset", version: str | None = None) -> SquadDataset:
    """Checks a SQuAD dataset (as `json.load` gives it) and collects its gold answers.

    `version` ("1.1" or "2.0") picks the official script to follow; by default the file's
    `version` field decides ("1.1", or "v2.0"), and without one a file with unanswerable
    questions is v2.0.
    """
    if not isinstance(dataset_json, dict) or not isinstance(dataset_json.get("data"), list):
        raise InputError(f"{source} is not a SQuAD dataset: expected a JSON object with a list 'data'")
    answers: dict[str, tuple[str, ...]] = {}
    impossible_flag = False
    for a, article in enumerate(dataset_json["data"]):
        for p, paragraph in enumerate(_list_field(article, "paragraphs", f"data[{a}]", source)):
            for q, question in enumerate(_list_field(paragraph, "qas", f"data[{a}].paragraphs[{p}]", source)):
                where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                qid = question.get("id") if isinstance(question, dict) else None
                if not isinstance(qid, str):
                    raise InputError(f"{source} is not a SQuAD dataset: {where} has no string 'id'")
                if qid in answers:
                    raise InputError(f"{source}: question id {qid!r} appears twice (again at {where})")
                texts = []
                for i, answer in enumerate(_list_field(question, "answers", where, source)):
                    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
                        raise InputError(f"{source} is not a SQuAD dataset: {where}.answers[{i}] has no string 'text'")
                    texts.append(answer["text"])
                answers[qid] = tuple(texts)
                impossible_flag = impossible_flag or "is_impossible" in question
    if not answers:
        raise InputError(f"{source} holds no questions")
    version = version or _version(dataset_json.get("version"), impossible_flag or not all(answers.values()))
    if version not in VERSIONS:
        raise InputError(f"unknown SQuAD version {version!r}; choose one of {', '.join(VERSIONS)}")
    if version == V1:
        unanswerable = next((qid for qid, texts in answers.items() if not texts), None)
        if unanswerable is not None:
            raise InputError(
                f"{source}: question {unanswerable!r} has no answers, which SQuAD 1.1 does not allow "
                "(evaluate it as 2.0)"
            )
    return SquadDataset(source, version, answers)


def _version(declared: object, looks_v2: bool) -> str:
    if isinstance(declared, str) and declared.lstrip("v").startswith("2"):
        return V2
    if isinstance(declared, str) and declared.lstrip("v").startswith("1"):
        return V1
    return V2 if looks_v2 else V1


def _list_field(parent: object, key: str, where: str, source: str) -> list:
    value = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(value, list):
        raise InputError(f"{source} is not a SQuAD dataset: {where} has no list {key!r}")
    return value


def read_dataset(path: str, version: str | None = None) -> SquadDataset:
    """`parse_dataset` of a dataset file (e.g. dev-v2.0.json); local or gs:// paths."""
    return parse_dataset(_read_json(path), source=str(path), version=version)


def read_predictions(path: str) -> dict[str, str]:
    """A predictions file: one JSON object, question id -> answer text ("" for no answer)."""
    predictions = _read_json(path)
    if not isinstance(predictions, dict):
        raise InputError(f"{path} must be a JSON object mapping question ids to answer texts")
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise InputError(f"{path}: the prediction for {qid!r} is {text!r}, not a string")
    return predictions


def read_na_probs(path: str) -> dict[str, float]:
    """A no-answer probability file: one JSON object, question id -> number (any real scale)."""
    na_probs = _read_json(path)
    if not isinstance(na_probs, dict):
        raise InputError(f"{path} must be a JSON object mapping question ids to no-answer probabilities")
    for qid, value in na_probs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{path}: the no-answer probability of {qid!r} is {value!r}, not a finite number")
    return na_probs


def _read_json(path: str) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not JSON: {error}") from None
