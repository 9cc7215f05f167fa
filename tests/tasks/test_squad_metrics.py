"""SQuAD metrics against hand-computed numbers and a transcription of the official algorithms.

The transcription below restates the official v1.1 and v2.0 evaluation scripts step by step from
their definition (walk articles > paragraphs > questions, score, average, sweep), independently of
albert_jax, so the fuzz test can demand bit-equal results on arbitrary input.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from albert_jax.errors import InputError
from albert_jax.tasks import squad_metrics
from albert_jax.tasks.squad_metrics import evaluate, exact_match, f1_score, normalize_answer, parse_dataset


def _official_normalize(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _official_f1(gold, pred, v2):
    gold_tokens, pred_tokens = _official_normalize(gold).split(), _official_normalize(pred).split()
    if v2 and (not gold_tokens or not pred_tokens):
        return int(gold_tokens == pred_tokens)
    same = sum((collections.Counter(gold_tokens) & collections.Counter(pred_tokens)).values())
    if same == 0:
        return 0
    precision = 1.0 * same / len(pred_tokens)
    recall = 1.0 * same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def _questions(articles):
    return [qa for article in articles for paragraph in article["paragraphs"] for qa in paragraph["qas"]]


def _official_v1(articles, preds):
    total = exact = f1 = 0
    for qa in _questions(articles):
        total += 1
        if qa["id"] not in preds:
            continue
        golds = [answer["text"] for answer in qa["answers"]]
        pred = preds[qa["id"]]
        exact += max(_official_normalize(pred) == _official_normalize(gold) for gold in golds)
        f1 += max(_official_f1(gold, pred, v2=False) for gold in golds)
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total}


def _official_v2(articles, preds, na_probs=None, thresh=1.0):
    has_ans = {qa["id"]: bool(qa["answers"]) for qa in _questions(articles)}
    exact_raw, f1_raw = {}, {}
    for qa in _questions(articles):
        golds = [a["text"] for a in qa["answers"] if _official_normalize(a["text"])] or [""]
        pred = preds[qa["id"]]
        exact_raw[qa["id"]] = max(int(_official_normalize(g) == _official_normalize(pred)) for g in golds)
        f1_raw[qa["id"]] = max(_official_f1(g, pred, v2=True) for g in golds)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}

    def apply(raw):
        return {k: (float(not has_ans[k]) if probs[k] > thresh else s) for k, s in raw.items()}

    exact, f1 = apply(exact_raw), apply(f1_raw)
    out = {
        "exact": 100.0 * sum(exact.values()) / len(exact),
        "f1": 100.0 * sum(f1.values()) / len(f1),
        "total": len(exact),
    }
    for prefix, keep in (("HasAns", True), ("NoAns", False)):
        ids = [k for k, v in has_ans.items() if v == keep]
        if ids:
            out[f"{prefix}_exact"] = 100.0 * sum(exact[k] for k in ids) / len(ids)
            out[f"{prefix}_f1"] = 100.0 * sum(f1[k] for k in ids) / len(ids)
            out[f"{prefix}_total"] = len(ids)
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            current = sum(1 for k in has_ans if not has_ans[k])
            best, best_thresh = current, 0.0
            for k in sorted(na_probs, key=lambda k: na_probs[k]):
                if k not in raw:
                    continue
                current += raw[k] if has_ans[k] else (-1 if preds[k] else 0)
                if current > best:
                    best, best_thresh = current, na_probs[k]
            out[f"best_{name}"] = 100.0 * best / len(raw)
            out[f"best_{name}_thresh"] = best_thresh
    return out


def _dataset(questions, version="v2.0"):
    """A SQuAD JSON of (id, [gold texts]) questions, two per paragraph, two paragraphs per article."""
    qas = [
        {"id": qid, "question": "?", "answers": [{"text": t, "answer_start": 0} for t in golds]}
        for qid, golds in questions
    ]
    paragraphs = [{"context": "...", "qas": qas[i : i + 2]} for i in range(0, len(qas), 2)]
    articles = [{"title": "t", "paragraphs": paragraphs[i : i + 2]} for i in range(0, len(paragraphs), 2)]
    return {"version": version, "data": articles}


# Articles, punctuation, case, digits, non-ASCII letters and whitespace: what normalisation touches.
_WORDS = ["The", "a", "an", "A.", "Paris", "paris,", "fox", "red", "Fox!", "the", "theatre"]
_WORDS += ["1,000", "...", "über", "an-", "Élan", "(the)", "\t"]
_TEXT = st.lists(st.sampled_from(_WORDS), max_size=4).map(" ".join)


@st.composite
def _squad_case(draw, v2):
    golds = draw(st.lists(st.lists(_TEXT, min_size=0 if v2 else 1, max_size=3), min_size=1, max_size=8))
    questions = [(f"q{i}", answers) for i, answers in enumerate(golds)]
    preds = {}
    for qid, answers in questions:
        # Often a gold answer (possibly spelled differently), else random text, sometimes "".
        choice = draw(st.sampled_from(["gold", "text", "empty"]))
        if choice == "gold" and answers:
            preds[qid] = draw(st.sampled_from(answers)).upper()
        else:
            preds[qid] = "" if choice == "empty" else draw(_TEXT)
    if not v2:
        kept = draw(st.lists(st.booleans(), min_size=len(questions), max_size=len(questions)))
        preds = {qid: text for (qid, text), keep in zip(preds.items(), kept) if keep}
        return questions, preds, None, 1.0
    # Few distinct probabilities, so ties are common; ids in any order, plus one the dataset lacks.
    ids = draw(st.permutations([qid for qid, _ in questions] + ["elsewhere"]))
    na_probs = {qid: draw(st.sampled_from([0.0, 0.2, 0.5, 0.8, 1.0])) for qid in ids}
    return questions, preds, draw(st.none() | st.just(na_probs)), draw(st.sampled_from([-1.0, 0.0, 0.5, 1.0]))


@settings(max_examples=150, deadline=None)
@given(_squad_case(v2=True))
def test_v2_equals_official_transcription(case):
    questions, preds, na_probs, thresh = case
    dataset_json = _dataset(questions)
    expected = _official_v2(dataset_json["data"], preds, na_probs, thresh)
    got = evaluate(parse_dataset(dataset_json), preds, na_probs, thresh)
    assert list(got.items()) == list(expected.items())  # same keys, order and bits


@settings(max_examples=100, deadline=None)
@given(_squad_case(v2=False))
def test_v1_equals_official_transcription(case):
    questions, preds, _, _ = case
    dataset_json = _dataset(questions, version="1.1")
    assert evaluate(parse_dataset(dataset_json), preds) == _official_v1(dataset_json["data"], preds)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("an apple, a pear and THE plum.", "apple pear and plum"),
        ("theatre another anthem", "theatre another anthem"),  # articles only as whole words
        ("  spaced \t out\n words ", "spaced out words"),
        ("U.S.A.", "usa"),
        ("the-end", "theend"),  # punctuation goes first, so the article glued by it survives
        ("a.", ""),
        ("Élan (vital)", "élan vital"),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_scores_of_one_answer():
    assert exact_match("the Eiffel Tower!", "Eiffel  tower") == 1
    assert exact_match("Eiffel", "Eiffel Tower") == 0
    # pred {denver, broncos} vs gold {broncos}: precision 1/2, recall 1.
    assert f1_score("Denver Broncos", "The Broncos") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert f1_score("x b b", "b b b") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))  # bags, not sets
    assert f1_score("the", "", version="2.0") == 1.0  # both empty once normalised: a correct "no answer"
    assert f1_score("the", "", version="1.1") == 0.0
    assert f1_score("", "Paris", version="2.0") == 0.0


def test_several_gold_answers_take_the_best():
    dataset = parse_dataset(_dataset([("q", ["Broncos", "Denver Broncos team"])], version="1.1"))
    # EM none; F1 max(2/3 vs {broncos}, 0.8 vs {denver, broncos, team}).
    assert evaluate(dataset, {"q": "Denver Broncos"}) == pytest.approx({"exact_match": 0.0, "f1": 80.0})
    assert evaluate(dataset, {"q": "the broncos"}) == pytest.approx({"exact_match": 100.0, "f1": 100.0})


def test_v1_missing_prediction_scores_zero(caplog):
    dataset = parse_dataset(_dataset([("q1", ["Paris"]), ("q2", ["fox"])], version="1.1"))
    with caplog.at_level(logging.WARNING):
        assert evaluate(dataset, {"q1": "paris"}) == {"exact_match": 50.0, "f1": 50.0}
    assert "1 of 2 questions of the dataset have no prediction and score 0, e.g. 'q2'" in caplog.text


V2_QUESTIONS = [("q1", ["Paris"]), ("q2", []), ("q3", []), ("q4", ["the red fox"])]
V2_PREDICTIONS = {"q1": "paris", "q2": "", "q3": "London", "q4": "red fox jumped"}
# Raw scores: q1 1/1, q2 1/1 (empty for unanswerable), q3 0/0, q4 exact 0, F1 p=2/3 r=1 -> 0.8.


def test_v2_by_hand():
    got = evaluate(parse_dataset(_dataset(V2_QUESTIONS)), V2_PREDICTIONS)
    assert got == pytest.approx(
        {
            "exact": 50.0,
            "f1": 70.0,
            "total": 4,
            "HasAns_exact": 50.0,
            "HasAns_f1": 90.0,
            "HasAns_total": 2,
            "NoAns_exact": 50.0,
            "NoAns_f1": 50.0,
            "NoAns_total": 2,
        }
    )


def test_v2_threshold_and_sweep_by_hand():
    dataset = parse_dataset(_dataset(V2_QUESTIONS))
    na_probs = {"q1": 0.1, "q2": 0.9, "q3": 0.8, "q4": 0.3}
    got = evaluate(dataset, V2_PREDICTIONS, na_probs, na_prob_thresh=0.5)
    # Above 0.5: q2 and q3 count as "no answer", right for both.
    assert got["exact"] == pytest.approx(75.0) and got["f1"] == pytest.approx(95.0)
    assert got["NoAns_exact"] == 100.0 and got["HasAns_f1"] == pytest.approx(90.0)
    # Sweep from "all unanswered" (2 right) by rising probability: q1 +1 -> 3 (best at 0.1),
    # q4 +0 (EM) / +0.8 (F1, best 3.8 at 0.3), q3 -1 (answered "London"), q2 +0.
    assert got["best_exact"] == 75.0 and got["best_exact_thresh"] == 0.1
    assert got["best_f1"] == pytest.approx(95.0) and got["best_f1_thresh"] == 0.3
    # The default threshold 1.0 leaves every answer as predicted.
    assert evaluate(dataset, V2_PREDICTIONS, na_probs)["exact"] == 50.0
    assert "best_f1" not in evaluate(dataset, V2_PREDICTIONS)


def test_v2_sweep_takes_ties_in_file_order():
    dataset = parse_dataset(_dataset([("answerable", ["Paris"]), ("unanswerable", [])]))
    predictions = {"answerable": "Paris", "unanswerable": "London"}
    # Start: 1 right (the unanswerable one). Answerable first: 2, then 1 -> best 100% at 0.5.
    first = evaluate(dataset, predictions, {"answerable": 0.5, "unanswerable": 0.5})
    assert (first["best_exact"], first["best_exact_thresh"]) == (100.0, 0.5)
    # Unanswerable first: 0, then 1 -> never above the start: 50% at 0.0.
    second = evaluate(dataset, predictions, {"unanswerable": 0.5, "answerable": 0.5})
    assert (second["best_exact"], second["best_exact_thresh"]) == (50.0, 0.0)


def test_v2_quirks_of_the_official_script():
    # A gold answer that normalises to nothing leaves "" as the answer, yet the question stays HasAns.
    dataset = parse_dataset(_dataset([("q1", ["The"]), ("q2", [])]))
    got = evaluate(dataset, {"q1": "", "q2": "an"}, {"q1": 0.2, "q2": 0.1})
    assert got["HasAns_exact"] == 100.0 and got["HasAns_total"] == 1
    # q2's "an" normalises to "" and scores as a correct no-answer, so answering everything
    # (threshold 0.2) scores 100%; but the sweep looks at the raw text and counts q2 wrong:
    # start 1 (q2 right), q2 -1 -> 0, q1 +1 -> 1, never above the start.
    assert got["exact"] == 100.0
    assert (got["best_exact"], got["best_exact_thresh"]) == (50.0, 0.0)


def test_v2_missing_prediction_is_an_error():
    dataset = parse_dataset(_dataset(V2_QUESTIONS), source="dev-v2.0.json")
    with pytest.raises(InputError, match=r"question 'q3' of dev-v2.0.json has no prediction \(1 of 4"):
        evaluate(dataset, {k: v for k, v in V2_PREDICTIONS.items() if k != "q3"})
    with pytest.raises(InputError, match="question 'q4' of dev-v2.0.json has no no-answer probability"):
        evaluate(dataset, V2_PREDICTIONS, {"q1": 0.1, "q2": 0.9, "q3": 0.8})
    with pytest.raises(InputError, match="SQuAD 1.1, which has no no-answer probabilities"):
        evaluate(parse_dataset(_dataset([("q", ["x"])], version="1.1")), {"q": "x"}, {"q": 0.0})


def test_predictions_for_another_dataset():
    dataset = parse_dataset(_dataset(V2_QUESTIONS), source="dev.json")
    other = {"x1": "a", "x2": "b", "x3": "c", "q1": "paris"}
    for version_dataset in (dataset, parse_dataset(_dataset([("q1", ["a"]), ("q2", ["b"]), ("q3", ["c"])], "1.1"))):
        with pytest.raises(InputError, match=r"not for .*: 3 of their 4 question ids are not in it, e.g. 'x1'"):
            evaluate(version_dataset, other)
    # Predictions for a larger set that includes this one are fine: extra ids are ignored.
    assert evaluate(dataset, {**V2_PREDICTIONS, **{f"x{i}": "" for i in range(10)}})["exact"] == 50.0


@pytest.mark.parametrize(
    ("dataset_json", "message"),
    [
        ([1, 2], "data.json is not a SQuAD dataset: expected a JSON object with a list 'data'"),
        ({"version": "1.1", "data": [{"title": "t"}]}, r"data\[0\] has no list 'paragraphs'"),
        (
            {"data": [{"paragraphs": [{"qas": [{"answers": []}]}]}]},
            r"data\[0\].paragraphs\[0\].qas\[0\] has no string 'id'",
        ),
        ({"data": [{"paragraphs": [{"qas": [{"id": "q"}]}]}]}, r"qas\[0\] has no list 'answers'"),
        (
            {"data": [{"paragraphs": [{"qas": [{"id": "q", "answers": ["Paris"]}]}]}]},
            r"answers\[0\] has no string 'text'",
        ),
        ({"data": []}, "data.json holds no questions"),
        (_dataset([("q", ["a"]), ("r", ["b"]), ("q", ["c"])]), r"question id 'q' appears twice \(again at data\[0\]"),
        (_dataset([("q", ["a"]), ("r", [])], version="1.1"), "question 'r' has no answers, which SQuAD 1.1"),
    ],
)
def test_malformed_dataset_names_the_file(tmp_path, monkeypatch, dataset_json, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.json").write_text(json.dumps(dataset_json))
    with pytest.raises(InputError, match=message):
        squad_metrics.read_dataset("data.json")


def test_version_detection():
    unanswerable = [("q", ["a"]), ("r", [])]
    assert parse_dataset(_dataset([("q", ["a"])], version="1.1")).version == "1.1"
    assert parse_dataset(_dataset([("q", ["a"])], version="v2.0")).version == "2.0"
    assert parse_dataset({"data": _dataset(unanswerable)["data"]}).version == "2.0"
    assert parse_dataset({"data": _dataset([("q", ["a"])])["data"]}).version == "1.1"
    assert parse_dataset(_dataset([("q", ["a"])], version="1.1"), version="2.0").version == "2.0"
    with pytest.raises(InputError, match="unknown SQuAD version '3'"):
        parse_dataset(_dataset([("q", ["a"])]), version="3")


def test_prediction_and_na_prob_files(tmp_path):
    def write(name, content):
        (tmp_path / name).write_text(content)
        return str(tmp_path / name)

    with_bom = '\ufeff{"q": "Paris", "r": ""}'
    assert squad_metrics.read_predictions(write("p.json", with_bom)) == {"q": "Paris", "r": ""}
    with pytest.raises(InputError, match=r"p2.json: the prediction for 'q' is \['Paris'\], not a string"):
        squad_metrics.read_predictions(write("p2.json", '{"q": ["Paris"]}'))
    with pytest.raises(InputError, match="p3.json must be a JSON object mapping question ids to answer texts"):
        squad_metrics.read_predictions(write("p3.json", '[{"id": "q"}]'))
    with pytest.raises(InputError, match="p4.json is not JSON: Expecting"):
        squad_metrics.read_predictions(write("p4.json", '{"q": '))
    with pytest.raises(InputError, match=r"no file '.*missing.json'"):
        squad_metrics.read_predictions(str(tmp_path / "missing.json"))
    assert squad_metrics.read_na_probs(write("n.json", '{"q": 0.25, "r": 3}')) == {"q": 0.25, "r": 3}
    with pytest.raises(InputError, match="n2.json: the no-answer probability of 'q' is nan, not a finite number"):
        squad_metrics.read_na_probs(write("n2.json", '{"q": NaN}'))
    with pytest.raises(InputError, match="n3.json: the no-answer probability of 'q' is True"):
        squad_metrics.read_na_probs(write("n3.json", '{"q": true}'))
