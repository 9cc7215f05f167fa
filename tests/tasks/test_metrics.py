"""GLUE and tagging metrics: hand-computed values, independent formulas, degenerate and bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from albert_jax.errors import InputError
from albert_jax.tasks import metrics
from albert_jax.tasks.glue_tasks import GLUE_TASKS
from albert_jax.tasks.metrics import entity_scores, glue_metrics

# tp=2 (ids 0, 4), fn=1 (id 1), fp=1 (id 3), tn=1 (id 2).
LABELS = [1, 1, 0, 0, 1]
PREDICTIONS = [1, 0, 0, 1, 1]


def test_hand_computed_binary_metrics():
    assert metrics.accuracy(LABELS, PREDICTIONS) == pytest.approx(3 / 5)
    assert metrics.f1(LABELS, PREDICTIONS) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn))
    assert metrics.matthews_corrcoef(LABELS, PREDICTIONS) == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))


def test_hand_computed_correlations():
    labels, predictions = [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]
    # Centred: (-1.5, -.5, .5, 1.5) both; cross products 2.25 + -.25 + -.25 + 2.25 = 4, norms 5.
    assert metrics.pearson(labels, predictions) == pytest.approx(4 / 5)
    assert metrics.spearman(labels, predictions) == pytest.approx(4 / 5)
    # A monotone but non-linear prediction: rank correlation 1, linear correlation below 1.
    assert metrics.spearman([1, 2, 3, 4], [1, 10, 100, 1000]) == pytest.approx(1.0)
    assert metrics.pearson([1, 2, 3, 4], [1, 10, 100, 1000]) < 0.9
    # Ties take their mean rank: (1, 2.5, 2.5, 4) against (1, 2, 3, 4).
    tied_ranks = np.array([1, 2.5, 2.5, 4])
    assert metrics.spearman([1, 2, 3, 4], [0, 5, 5, 9]) == pytest.approx(np.corrcoef(tied_ranks, [1, 2, 3, 4])[0, 1])


@pytest.mark.parametrize("seed", range(5))
def test_equal_to_independent_formulas_on_random_input(seed):
    rng = np.random.default_rng(seed)
    labels, predictions = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    tp = np.sum((labels == 1) & (predictions == 1))
    tn = np.sum((labels == 0) & (predictions == 0))
    fp = np.sum((labels == 0) & (predictions == 1))
    fn = np.sum((labels == 1) & (predictions == 0))
    assert metrics.accuracy(labels, predictions) == pytest.approx((tp + tn) / 200)
    assert metrics.f1(labels, predictions) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    expected_mcc = (tp * tn - fp * fn) / np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    assert metrics.matthews_corrcoef(labels, predictions) == pytest.approx(expected_mcc)

    scores, predicted_scores = rng.uniform(0, 5, 100), rng.normal(size=100)  # no ties
    assert metrics.pearson(scores, predicted_scores) == pytest.approx(np.corrcoef(scores, predicted_scores)[0, 1])
    ranks, predicted_ranks = np.argsort(np.argsort(scores)), np.argsort(np.argsort(predicted_scores))
    assert metrics.spearman(scores, predicted_scores) == pytest.approx(np.corrcoef(ranks, predicted_ranks)[0, 1])


@pytest.mark.filterwarnings("error")  # the libraries' warnings and NaNs are answered, not passed on
@pytest.mark.parametrize("constant_side", ["labels", "predictions", "both"])
def test_undefined_correlations_are_zero(constant_side):
    varied, constant = [0, 1, 1, 0, 1], [1, 1, 1, 1, 1]
    labels = constant if constant_side != "predictions" else varied
    predictions = constant if constant_side != "labels" else varied
    assert metrics.matthews_corrcoef(labels, predictions) == 0.0
    assert metrics.pearson(labels, predictions) == 0.0
    assert metrics.spearman(labels, predictions) == 0.0


@pytest.mark.filterwarnings("error")
def test_degenerate_f1_and_single_example():
    assert metrics.f1([0, 0, 0], [0, 0, 0]) == 0.0  # no positives at all
    assert metrics.f1([1, 0], [0, 0]) == 0.0  # no positive predictions
    assert metrics.accuracy([1], [1]) == 1.0
    assert metrics.pearson([3.0], [2.0]) == 0.0  # one example: constant, not scipy's ValueError


@pytest.mark.parametrize(
    ("function", "labels", "predictions", "message"),
    [
        (metrics.accuracy, [], [], "no examples"),
        (metrics.pearson, [], [], "no examples"),
        (metrics.accuracy, [0, 1], [0], "2 labels but 1 predictions"),
        (metrics.accuracy, [[0, 1]], [[0, 1]], "flat lists"),
        (metrics.accuracy, [0.0, 1.0], [0, 1], "integer class ids, not float64"),
        (metrics.matthews_corrcoef, ["0", "1"], [0, 1], "integer class ids"),
        (metrics.f1, [0, 2, 1], [0, 1, 1], "the labels hold 2 at index 1"),
        (metrics.pearson, [1.0, np.nan], [1.0, 2.0], "the labels hold nan at index 1"),
        (metrics.spearman, [1.0, 2.0], [1.0, np.inf], "the predictions hold inf at index 1"),
        (metrics.pearson, ["a", "b"], [1.0, 2.0], "must be numbers"),
    ],
)
def test_bad_input(function, labels, predictions, message):
    with pytest.raises(InputError, match=message):
        function(labels, predictions)


def test_glue_table():
    expected = {
        "cola": ({"mcc"}, "mcc"),
        "sst2": ({"accuracy"}, "accuracy"),
        "mrpc": ({"f1", "accuracy"}, "accuracy"),
        "qqp": ({"f1", "accuracy"}, "accuracy"),
        "stsb": ({"pearson", "spearman"}, "pearson"),
        "mnli": ({"accuracy", "accuracy_mm"}, "accuracy"),
        "qnli": ({"accuracy"}, "accuracy"),
        "rte": ({"accuracy"}, "accuracy"),
        "wnli": ({"accuracy"}, "accuracy"),
    }
    assert {name: (set(task.reported_metrics), task.main_metric) for name, task in GLUE_TASKS.items()} == expected
    assert [name for name, task in GLUE_TASKS.items() if task.is_regression] == ["stsb"]
    assert [name for name, task in GLUE_TASKS.items() if task.has_mismatched] == ["mnli"]
    assert GLUE_TASKS["mnli"].labels == ("contradiction", "entailment", "neutral")
    assert GLUE_TASKS["rte"].labels == ("entailment", "not_entailment")


def test_glue_table_imports_without_numpy():
    """The CLI imports the table to build its parser; numpy there would slow every command."""
    script = "import sys, albert_jax.tasks.glue_tasks; print(sorted({'numpy', 'etils'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_glue_metrics_per_task():
    assert glue_metrics("MRPC", LABELS, PREDICTIONS) == pytest.approx({"f1": 2 / 3, "accuracy": 3 / 5})
    assert glue_metrics("CoLA", LABELS, PREDICTIONS) == pytest.approx({"mcc": 1 / 6})
    for stsb in ("sts-b", "STS-B", "stsb"):
        assert glue_metrics(stsb, [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(
            {"pearson": 0.8, "spearman": 0.8}
        )
    for sst2 in ("SST-2", "sst-2", "sst2"):
        assert glue_metrics(sst2, LABELS, PREDICTIONS) == pytest.approx({"accuracy": 3 / 5})
    assert glue_metrics("mnli", [0, 1, 2, 2], [0, 1, 2, 0]) == {"accuracy": 0.75}
    assert glue_metrics("mnli", [0, 1, 2, 2], [0, 1, 1, 0], mismatched=True) == {"accuracy_mm": 0.5}


@pytest.mark.parametrize(
    ("task", "labels", "predictions", "options", "message"),
    [
        ("sst", [0], [0], {}, "unknown GLUE task 'sst'; the tasks are cola, sst2, mrpc, qqp, stsb, mnli"),
        ("stsb", [0.5], [1.0], {"mismatched": True}, "stsb has no mismatched dev set"),
        ("rte", [0], [0], {"mismatched": True}, "rte has no mismatched dev set"),
        ("mnli", [0, 3], [0, 1], {}, r"mnli has 3 classes \(ids 0..2\); the labels hold 3 at index 1"),
        ("qnli", [0, 1], [0, -1], {}, "the predictions hold -1 at index 1"),
    ],
)
def test_glue_bad_input(task, labels, predictions, options, message):
    with pytest.raises(InputError, match=message):
        glue_metrics(task, labels, predictions, **options)


# CoNLL-2003's original IOB1: B- only where two entities of one type touch.
IOB1_LABELS = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["O", "I-ORG"]]
IOB1_PREDICTIONS = [["I-PER", "I-PER", "I-PER", "O", "I-LOC"], ["O", "O"]]


def test_entities_hand_computed_iob1():
    # Gold PER[0:2], PER[2:3], LOC[4:5], ORG; predicted PER[0:3], LOC[4:5]: one of 2 right, 1 of 4 found.
    expected = {"precision": 1 / 2, "recall": 1 / 4, "f1": 2 * (1 / 2) * (1 / 4) / (1 / 2 + 1 / 4)}
    assert entity_scores(IOB1_LABELS, IOB1_PREDICTIONS) == pytest.approx(expected)
    assert entity_scores(IOB1_LABELS, IOB1_PREDICTIONS, scheme="IOB1") == pytest.approx(expected)


def test_entities_schemes_differ_on_ill_formed_tags():
    labels = [["B-PER", "I-PER", "O", "B-LOC"]]
    starts_with_inside = [["I-PER", "I-PER", "O", "B-LOC"]]
    # The default (conlleval) forgives an entity begun with I-; strict IOB2 drops it.
    assert entity_scores(labels, starts_with_inside) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    strict = entity_scores(labels, starts_with_inside, scheme="IOB2")
    assert strict == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})
    # IOB1 begins no entity with a B- after O: the gold is read as PER[1:2] alone, the prediction as
    # PER[0:2], and nothing matches.
    iob1 = entity_scores(labels, starts_with_inside, scheme="IOB1")
    assert iob1 == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.filterwarnings("error")
def test_entities_with_nothing_to_find_or_predict():
    assert entity_scores([["O", "O"]], [["O", "O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert entity_scores([["B-PER"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert entity_scores([[]], [[]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


@pytest.mark.parametrize(
    ("labels", "predictions", "options", "message"),
    [
        ([], [], {}, "no sequences"),
        ([["O"]], [["O"], ["O"]], {}, "1 label sequences but 2 predicted sequences"),
        ([["O"], ["O", "B-X"]], [["O"], ["O"]], {}, "sequence 1: 2 label tags but 1 predicted tags"),
        ([["O", "PER"]], [["O", "O"]], {}, "sequence 0, token 1: label tag 'PER' is not O, B-TYPE or I-TYPE"),
        ([["O"]], [["B-"]], {}, "predicted tag 'B-'"),
        ([["O"]], [["E-PER"]], {"scheme": "IOB2"}, "predicted tag 'E-PER'"),
        ([["O"]], [["O"]], {"scheme": "BIO"}, "unknown tagging scheme 'BIO'"),
    ],
)
def test_entities_bad_input(labels, predictions, options, message):
    with pytest.raises(InputError, match=message):
        entity_scores(labels, predictions, **options)
