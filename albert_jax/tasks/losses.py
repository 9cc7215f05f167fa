"""Fine-tuning losses of every ALBERT task head, as sums that add up across batches.

Each `*_sums` function takes a head's logits, its labels and explicit weights, and returns a
dict of float32 sums: per-item losses, correct predictions and the counts they are averaged
over. Sums add up exactly across microbatches and eval batches, so any average taken from their
totals is independent of how the batch was split. A weight of 0 drops a row (the padding rows
of a last eval batch) or a token (padding, sub-word continuations): its label is never read, so
it may hold anything (-100, -1 or garbage) and cannot produce NaN.

The loss is `mean_loss(sums, normalisers)`: for each loss term present (`nll`, `squared_error`,
`start_nll`, `end_nll`), its sum divided by its count, averaged over the terms. With the counts
of the sums themselves this is exactly Hugging Face's `loss` for the same batch. To train with
microbatches, take `normalisers` from the WHOLE batch (`counts(weights)`, or `span_counts(...)` for
question answering; neither needs the logits) and divide each microbatch's sums by them: the
microbatch losses, and their gradients, then add up to the whole batch's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from albert_jax.errors import InputError

Sums = dict[str, jax.Array]

# Each loss term and the key of the count it is averaged over.
_LOSS_TERMS = {"nll": "count", "squared_error": "count", "start_nll": "start_count", "end_nll": "end_count"}


def _check_shape(name: str, x: jax.Array, shape: tuple[int, ...], what: str) -> None:
    if tuple(x.shape) != tuple(shape):
        raise InputError(f"{name} must be {what} {tuple(shape)}, got shape {tuple(x.shape)}")


def _check_integer(name: str, x: jax.Array) -> None:
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise InputError(f"{name} must be integers, got {x.dtype}")


def _weighted_cross_entropy(logits, labels, weights) -> tuple[jax.Array, jax.Array]:
    """Σ weight·nll and Σ weight·[argmax == label] over all leading axes of `logits`."""
    logits = jnp.asarray(logits, jnp.float32)
    # Unused labels (weight 0) may be out of range; index 0 keeps the gather, and so the
    # gradient, finite there.
    labels = jnp.where(weights > 0, labels, 0)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    hit = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return jnp.sum(nll * weights), jnp.sum(hit * weights)


def _as_weights(weights, shape: tuple[int, ...], what: str) -> jax.Array:
    weights = jnp.asarray(weights)
    _check_shape("weights", weights, shape, what)
    return weights.astype(jnp.float32)


def counts(weights) -> Sums:
    """{"count": Σ weights}: the normaliser of classification, multiple choice, regression and
    token classification (per-example or per-token weights)."""
    return {"count": jnp.sum(jnp.asarray(weights, jnp.float32))}


def classification_sums(logits, labels, weights) -> Sums:
    """Softmax cross-entropy of `logits` [batch, num_labels] against integer `labels` [batch].

    Returns {"nll", "correct", "count"}; `weights` [batch] is 1 for real examples, 0 for padding.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim != 2:
        raise InputError(f"classification logits must be [batch, num_labels], got shape {tuple(logits.shape)}")
    _check_shape("labels", labels, logits.shape[:1], "[batch]")
    _check_integer("labels", labels)
    weights = _as_weights(weights, logits.shape[:1], "[batch]")
    nll, correct = _weighted_cross_entropy(logits, labels, weights)
    return {"nll": nll, "correct": correct, **counts(weights)}


def multiple_choice_sums(logits, labels, weights) -> Sums:
    """Cross-entropy over choices: `logits` [batch, choices] (one score per choice, as
    `AlbertForMultipleChoice` returns), `labels` [batch] the right choice's index.

    Returns {"nll", "correct", "count"}, exactly as `classification_sums`.
    """
    return classification_sums(logits, labels, weights)


def regression_sums(logits, labels, weights) -> Sums:
    """Squared error of a one-output head: `logits` [batch, 1] against float `labels` [batch].

    Returns {"squared_error", "count"}; the mean is Hugging Face's MSELoss (num_labels=1).
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim != 2 or logits.shape[1] != 1:
        raise InputError(f"regression logits must be [batch, 1] (num_labels=1), got shape "
                         f"{tuple(logits.shape)}")
    _check_shape("labels", labels, logits.shape[:1], "[batch]")
    weights = _as_weights(weights, logits.shape[:1], "[batch]")
    # A padding row's label may be NaN; zeroing it keeps its (zero-weighted) error finite.
    labels = jnp.where(weights > 0, labels.astype(jnp.float32), 0.0)
    error = jnp.asarray(logits[:, 0], jnp.float32) - labels
    return {"squared_error": jnp.sum(jnp.square(error) * weights), **counts(weights)}


def token_classification_sums(logits, labels, weights) -> Sums:
    """Per-token cross-entropy: `logits` [batch, length, num_labels], integer `labels` and
    float `weights` both [batch, length].

    Tokens to skip (padding, special tokens, sub-word continuations, all of a padding row) have
    weight 0, in place of Hugging Face's label -100; their labels are not read, so HF-style
    labels work as they are with `weights = labels != -100`.
    Returns {"nll", "correct", "count"}, summed over weighted tokens.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    if logits.ndim != 3:
        raise InputError(f"token classification logits must be [batch, length, num_labels], got "
                         f"shape {tuple(logits.shape)}")
    _check_shape("labels", labels, logits.shape[:2], "[batch, length]")
    _check_integer("labels", labels)
    weights = _as_weights(weights, logits.shape[:2], "[batch, length]")
    nll, correct = _weighted_cross_entropy(logits, labels, weights)
    return {"nll": nll, "correct": correct, **counts(weights)}


def _span_weights(start_positions, end_positions, weights, length: int) -> tuple[jax.Array, ...]:
    """Clamped positions and the weights of the start and end terms.

    As in Hugging Face, positions are clamped to [0, length] and a position of `length` or more
    (an answer outside the window) is ignored; a negative one becomes 0, the [CLS] token.
    """
    start, end = (jnp.clip(p, 0, length) for p in (start_positions, end_positions))
    return start, end, weights * (start < length), weights * (end < length)


def span_counts(start_positions, end_positions, weights, length: int) -> Sums:
    """{"start_count", "end_count"}: the normalisers of `question_answering_sums` for
    sequences of `length` tokens."""
    _, _, start_weights, end_weights = _span_weights(
        jnp.asarray(start_positions), jnp.asarray(end_positions), jnp.asarray(weights, jnp.float32), length)
    return {"start_count": jnp.sum(start_weights), "end_count": jnp.sum(end_weights)}


def question_answering_sums(start_logits, end_logits, start_positions, end_positions, weights) -> Sums:
    """Cross-entropy of the simple span head: `start_logits`, `end_logits` [batch, length] over
    the sequence's positions, integer `start_positions`, `end_positions` and `weights` [batch].

    Returns {"start_nll", "end_nll", "start_count", "end_count"}; each term counts only the
    examples whose position is inside the window (see `_span_weights`), so `mean_loss` gives
    Hugging Face's (start_loss + end_loss) / 2.
    """
    start_logits, end_logits = jnp.asarray(start_logits), jnp.asarray(end_logits)
    if start_logits.ndim != 2:
        raise InputError(f"start_logits must be [batch, length], got shape {tuple(start_logits.shape)}")
    _check_shape("end_logits", end_logits, start_logits.shape, "[batch, length] like start_logits")
    batch, length = start_logits.shape
    positions = {}
    for name, value in (("start_positions", start_positions), ("end_positions", end_positions)):
        value = jnp.asarray(value)
        _check_shape(name, value, (batch,), "[batch]")
        _check_integer(name, value)
        positions[name] = value
    weights = _as_weights(weights, (batch,), "[batch]")
    start, end, start_weights, end_weights = _span_weights(
        positions["start_positions"], positions["end_positions"], weights, length)
    start_nll, _ = _weighted_cross_entropy(start_logits, start, start_weights)
    end_nll, _ = _weighted_cross_entropy(end_logits, end, end_weights)
    return {"start_nll": start_nll, "end_nll": end_nll,
            "start_count": jnp.sum(start_weights), "end_count": jnp.sum(end_weights)}


def mean_loss(sums: Sums, normalisers: Sums | None = None) -> jax.Array:
    """The mean over the loss terms in `sums` of each term's sum divided by its count.

    `normalisers` holds the count keys (`count`, or `start_count` and `end_count`) of the batch
    the loss is averaged over; by default the counts in `sums`. Pass the whole batch's counts
    when `sums` is one microbatch of it. A term whose count is 0 (a batch of padding only)
    contributes 0, not NaN, and so does its gradient.
    """
    normalisers = sums if normalisers is None else normalisers
    terms = [(term, count) for term, count in _LOSS_TERMS.items() if term in sums]
    if not terms:
        raise ValueError(f"no loss term in sums with keys {sorted(sums)}; expected one of "
                         f"{sorted(_LOSS_TERMS)}")
    total = 0.0
    for term, count_key in terms:
        if count_key not in normalisers:
            raise ValueError(f"loss term {term!r} needs the count {count_key!r}, not in normalisers "
                             f"with keys {sorted(normalisers)}")
        count = normalisers[count_key]
        # A safe divisor rather than a select after dividing: 0/0 would poison the gradient.
        total = total + sums[term] / jnp.where(count > 0, count, 1.0)
    return total / len(terms)
