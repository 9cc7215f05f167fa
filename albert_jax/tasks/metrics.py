"""Evaluation metrics of fine-tuning: GLUE classification and regression, entity-level tagging.

Each function checks its input and then calls the library everyone else's numbers come from:
scikit-learn (accuracy, F1, MCC), scipy (Pearson, Spearman), seqeval (entities). Arguments go
(labels, predictions) as in scikit-learn; results are Python floats, fractions rather than
percent. Where those libraries answer an undefined value with a warning or NaN, these functions
answer 0.0, so a score is always a finite number that JSON can hold and checkpoints can be ranked
by:

- a correlation (MCC, Pearson, Spearman) when the labels or the predictions are all one value:
  the denominator is zero. scikit-learn already gives 0.0 for MCC, as the original ALBERT's
  TensorFlow MCC did (`div_no_nan`); scipy gives NaN for Pearson and Spearman. A model that
  predicts a constant has learnt nothing about the order, so 0.0 (no correlation) it is.
- F1, precision or recall with nothing to divide (no positive predictions or no positive labels).

Bad input (empty, mismatched lengths, wrong dtype, out-of-range ids, malformed tags) is an
`InputError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from albert_jax.errors import InputError
from albert_jax.tasks.glue_tasks import glue_task

# scikit-learn, scipy and seqeval are imported where they are used: each takes seconds to import,
# and a caller rarely needs all three.


def accuracy(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Share of examples whose predicted class id equals the label."""
    import sklearn.metrics

    labels, predictions = _class_ids(labels, predictions)
    return float(sklearn.metrics.accuracy_score(labels, predictions))


def f1(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Binary F1 of class 1, the positive class of GLUE's MRPC and QQP (class ids 0 and 1 only)."""
    import sklearn.metrics

    labels, predictions = _class_ids(labels, predictions)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if not np.isin(values, (0, 1)).all():
            raise InputError(f"binary F1 needs class ids 0 and 1; the {name} hold {_other(values, (0, 1))}")
    return float(sklearn.metrics.f1_score(labels, predictions, pos_label=1, zero_division=0.0))


def matthews_corrcoef(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Matthews correlation coefficient (CoLA's metric); 0.0 when either side is constant."""
    import sklearn.metrics

    labels, predictions = _class_ids(labels, predictions)
    if _constant(labels) or _constant(predictions):
        return 0.0
    return float(sklearn.metrics.matthews_corrcoef(labels, predictions))


def pearson(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Pearson correlation (STS-B's main metric); 0.0 when either side is constant."""
    import scipy.stats

    labels, predictions = _real_values(labels, predictions)
    if _constant(labels) or _constant(predictions):
        return 0.0
    return float(scipy.stats.pearsonr(labels, predictions).statistic)


def spearman(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Spearman rank correlation (ties get their mean rank); 0.0 when either side is constant."""
    import scipy.stats

    labels, predictions = _real_values(labels, predictions)
    if _constant(labels) or _constant(predictions):
        return 0.0
    return float(scipy.stats.spearmanr(labels, predictions).statistic)


# Strict schemes of `entity_scores`: seqeval.scheme classes of these names.
ENTITY_SCHEMES = ("IOB1", "IOB2")


def entity_scores(
    labels: Sequence[Sequence[str]], predictions: Sequence[Sequence[str]], scheme: str | None = None
) -> dict[str, float]:
    """Entity-level `precision`, `recall` and `f1` (micro-averaged over entity types), by seqeval.

    An entity counts as found only when its type, first and last token all match. Tags are `O`,
    `B-TYPE` or `I-TYPE`, one list per sentence. `scheme` picks how tags spell entities:

    - None (default): seqeval's default mode, the rules of CoNLL's `conlleval` script that papers
      report: an entity starts at B-X, or at an I-X after O or another type, and goes on while
      I-X follows. It reads IOB1 (CoNLL-2003's original tagging: I- everywhere, B- only where two
      entities of one type touch) and IOB2 (every entity begins with B-) alike, and forgives a
      tagger that begins an entity with I-.
    - "IOB2" or "IOB1": seqeval's strict mode with that scheme; only entities well formed in it
      count. Under IOB2 an I-X that follows neither B-X nor I-X begins no entity, so those
      tokens are lost rather than forgiven. IOB1 is for data tagged in IOB1 only: there, a B-X
      after O begins no entity.

    Precision is 0.0 when nothing is predicted, recall 0.0 when there is nothing to find.
    """
    import seqeval.metrics
    import seqeval.scheme

    if scheme is not None and scheme not in ENTITY_SCHEMES:
        raise InputError(f"unknown tagging scheme {scheme!r}; choose one of {', '.join(ENTITY_SCHEMES)} or None")
    if len(labels) != len(predictions):
        raise InputError(f"{len(labels)} label sequences but {len(predictions)} predicted sequences")
    if not len(labels):
        raise InputError("no sequences to evaluate")
    for index, (label_tags, predicted_tags) in enumerate(zip(labels, predictions)):
        if len(label_tags) != len(predicted_tags):
            raise InputError(f"sequence {index}: {len(label_tags)} label tags but {len(predicted_tags)} predicted tags")
        for name, tags in (("label", label_tags), ("predicted", predicted_tags)):
            for position, tag in enumerate(tags):
                if not _is_iob_tag(tag):
                    raise InputError(
                        f"sequence {index}, token {position}: {name} tag {tag!r} is not O, B-TYPE or I-TYPE"
                    )
    labels = [list(tags) for tags in labels]
    predictions = [list(tags) for tags in predictions]
    options = {"zero_division": 0}
    if scheme is not None:
        options.update(mode="strict", scheme=getattr(seqeval.scheme, scheme))
    return {
        "precision": float(seqeval.metrics.precision_score(labels, predictions, **options)),
        "recall": float(seqeval.metrics.recall_score(labels, predictions, **options)),
        "f1": float(seqeval.metrics.f1_score(labels, predictions, **options)),
    }


_METRICS: dict[str, Callable[[npt.ArrayLike, npt.ArrayLike], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def glue_metrics(
    task: str, labels: npt.ArrayLike, predictions: npt.ArrayLike, *, mismatched: bool = False
) -> dict[str, float]:
    """The task's metrics on one dev set, e.g. {"f1": ..., "accuracy": ...} for MRPC.

    `task` is a name `glue_tasks.glue_task` knows ("sst2", "SST-2", ...). Class ids index
    `GlueTask.labels`; STS-B takes real-valued scores. `mismatched=True` scores MNLI's mismatched
    dev set under the names `accuracy_mm`.
    """
    spec = glue_task(task)
    if mismatched and not spec.has_mismatched:
        raise InputError(f"GLUE task {spec.name} has no mismatched dev set")
    if not spec.is_regression:
        for name, values in zip(("labels", "predictions"), _class_ids(labels, predictions)):
            if not np.isin(values, np.arange(len(spec.labels))).all():
                raise InputError(
                    f"{spec.name} has {len(spec.labels)} classes (ids 0..{len(spec.labels) - 1}); "
                    f"the {name} hold {_other(values, range(len(spec.labels)))}"
                )
    suffix = "_mm" if mismatched else ""
    return {name + suffix: _METRICS[name](labels, predictions) for name in spec.metrics}


def _pair(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.ndim != 1 or predictions.ndim != 1:
        raise InputError(
            f"labels and predictions must be flat lists; got shapes {labels.shape} and {predictions.shape}"
        )
    if len(labels) != len(predictions):
        raise InputError(f"{len(labels)} labels but {len(predictions)} predictions")
    if not len(labels):
        raise InputError("no examples to evaluate")
    return labels, predictions


def _class_ids(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = _pair(labels, predictions)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if not (np.issubdtype(values.dtype, np.integer) or values.dtype == bool):
            raise InputError(f"the {name} must be integer class ids, not {values.dtype}")
    return labels, predictions


def _real_values(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels, predictions = _pair(labels, predictions)
    for name, values in (("labels", labels), ("predictions", predictions)):
        if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
            raise InputError(f"the {name} must be numbers, not {values.dtype}")
        if not np.isfinite(values).all():
            index = int(np.flatnonzero(~np.isfinite(values))[0])
            raise InputError(f"the {name} hold {values[index].item()} at index {index}")
    return labels.astype(np.float64), predictions.astype(np.float64)


def _constant(values: np.ndarray) -> bool:
    return bool((values == values[0]).all())


def _other(values: np.ndarray, allowed: Sequence[int] | range) -> str:
    """The first value not in `allowed`, with its index, for an error message."""
    index = int(np.flatnonzero(~np.isin(values, np.asarray(allowed)))[0])
    return f"{values[index].item()!r} at index {index}"


def _is_iob_tag(tag: object) -> bool:
    return isinstance(tag, str) and (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2))
