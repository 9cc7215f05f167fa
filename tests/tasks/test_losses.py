"""Task losses: sums that add up, padding that counts zero, and loss and gradient parity with
transformers' PyTorch heads (loss output and every parameter's gradient, float32, 1e-5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import albert_jax
from albert_jax.errors import InputError
from albert_jax.model.pretrained import params_to_hf, to_hf_state_dict
from albert_jax.tasks import losses

BATCH, LENGTH, LABELS, CHOICES = 6, 7, 4, 3


def _random_case(kind: str, seed: int = 0):
    """(sums function, its logits as a tuple, its label arguments, counts function) for `kind`,
    with fractional weights and a zero-weight row holding an out-of-range label."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, BATCH).astype(np.float32)
    weights[2] = 0.0
    if kind == "classification":
        labels = rng.integers(0, LABELS, BATCH)
        labels[2] = -1
        return (losses.classification_sums, (rng.normal(size=(BATCH, LABELS)),), (labels, weights),
                lambda: losses.counts(weights))
    if kind == "multiple_choice":
        labels = rng.integers(0, CHOICES, BATCH)
        labels[2] = 99
        return (losses.multiple_choice_sums, (rng.normal(size=(BATCH, CHOICES)),), (labels, weights),
                lambda: losses.counts(weights))
    if kind == "regression":
        labels = rng.normal(size=BATCH).astype(np.float32)
        labels[2] = np.nan
        return (losses.regression_sums, (rng.normal(size=(BATCH, 1)),), (labels, weights),
                lambda: losses.counts(weights))
    if kind == "token_classification":
        labels = rng.integers(0, LABELS, (BATCH, LENGTH))
        token_weights = (rng.uniform(size=(BATCH, LENGTH)) < 0.7).astype(np.float32) * weights[:, None]
        labels[token_weights == 0] = -100
        return (losses.token_classification_sums, (rng.normal(size=(BATCH, LENGTH, LABELS)),),
                (labels, token_weights), lambda: losses.counts(token_weights))
    assert kind == "question_answering"
    # In the window, past it (ignored), negative (clamped to [CLS]), end exactly at `LENGTH`.
    starts = np.array([1, LENGTH + 3, 0, -2, 4, 2])
    ends = np.array([3, LENGTH + 5, 9, 1, LENGTH, 6])
    return (losses.question_answering_sums,
            (rng.normal(size=(BATCH, LENGTH)), rng.normal(size=(BATCH, LENGTH))), (starts, ends, weights),
            lambda: losses.span_counts(starts, ends, weights, LENGTH))


KINDS = ["classification", "multiple_choice", "regression", "token_classification", "question_answering"]


def _split(arrays, rows):
    return tuple(jnp.asarray(np.asarray(a)[rows]) for a in arrays)


@pytest.mark.parametrize("kind", KINDS)
def test_microbatches_add_up_to_the_whole_batch(kind):
    """Losses normalised by the whole batch's counts, and their gradients, add up exactly."""
    fn, logits, labels, whole_counts = _random_case(kind)
    logits = tuple(jnp.asarray(x, jnp.float32) for x in logits)
    whole = fn(*logits, *labels)
    # The counts a trainer computes before splitting are the ones in the sums.
    for key, value in whole_counts().items():
        np.testing.assert_allclose(value, whole[key], rtol=1e-6)

    @jax.jit
    @jax.value_and_grad
    def loss(logits, labels, counts):
        return losses.mean_loss(fn(*logits, *labels), counts)

    whole_loss, whole_grad = loss(logits, labels, None)
    parts = [np.arange(BATCH)[i::3] for i in range(3)]
    micro = [fn(*_split(logits, rows), *_split(labels, rows)) for rows in parts]
    for key in whole:
        np.testing.assert_allclose(sum(m[key] for m in micro), whole[key], rtol=1e-5, atol=1e-6)
    micro_loss, micro_grads = 0.0, [np.zeros(x.shape, np.float32) for x in logits]
    for rows in parts:
        value, grads = loss(_split(logits, rows), _split(labels, rows), whole_counts())
        micro_loss += value
        for micro_grad, grad in zip(micro_grads, grads):
            micro_grad[rows] = grad
    np.testing.assert_allclose(micro_loss, whole_loss, rtol=1e-5)
    for micro_grad, grad in zip(micro_grads, whole_grad):
        np.testing.assert_allclose(micro_grad, grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_weight_rows_count_nothing_whatever_their_labels(kind):
    fn, logits, labels, _ = _random_case(kind)
    logits = tuple(jnp.asarray(x, jnp.float32) for x in logits)
    kept = np.array([i for i in range(BATCH) if i != 2])
    with_padding = fn(*logits, *labels)
    without = fn(*_split(logits, kept), *_split(labels, kept))
    for key in with_padding:
        assert np.isfinite(with_padding[key]), key
        np.testing.assert_allclose(with_padding[key], without[key], rtol=1e-6, atol=1e-6)
    grads = jax.grad(lambda x: losses.mean_loss(fn(*x, *labels)))(logits)
    for grad in grads:
        assert np.all(np.isfinite(grad)) and not np.any(grad[2]), "the padding row gets no gradient"


def test_question_answering_counts_follow_hugging_face_clamping():
    _, _, (starts, ends, weights), counts = _random_case("question_answering")
    # Starts 1, 0, -2 (clamped to 0), 4, 2 are in the window, but row 2 weighs 0; ends 3, 1, 6 are.
    expected_start = weights[[0, 3, 4, 5]].sum()
    expected_end = weights[[0, 3, 5]].sum()
    np.testing.assert_allclose(counts()["start_count"], expected_start, rtol=1e-6)
    np.testing.assert_allclose(counts()["end_count"], expected_end, rtol=1e-6)


def test_a_batch_of_padding_only_has_zero_loss_and_gradient():
    logits = jnp.ones((2, 3))
    labels, weights = jnp.array([-100, 7]), jnp.zeros(2)
    value, grad = jax.value_and_grad(
        lambda x: losses.mean_loss(losses.classification_sums(x, labels, weights)))(logits)
    assert value == 0.0 and np.all(grad == 0.0)


@pytest.mark.parametrize("call,message", [
    (lambda: losses.classification_sums(jnp.zeros((2, 3)), jnp.zeros((2, 1), int), jnp.ones(2)),
     r"labels must be \[batch\] \(2,\), got shape \(2, 1\)"),
    (lambda: losses.classification_sums(jnp.zeros((2, 3)), jnp.zeros(2), jnp.ones(2)),
     "labels must be integers"),
    (lambda: losses.regression_sums(jnp.zeros((2, 3)), jnp.zeros(2), jnp.ones(2)),
     r"regression logits must be \[batch, 1\]"),
    (lambda: losses.token_classification_sums(jnp.zeros((2, 5, 3)), jnp.zeros((2, 5), int), jnp.ones(2)),
     r"weights must be \[batch, length\] \(2, 5\), got shape \(2,\)"),
    (lambda: losses.question_answering_sums(jnp.zeros((2, 5)), jnp.zeros((2, 4)), jnp.zeros(2, int),
                                            jnp.zeros(2, int), jnp.ones(2)),
     "end_logits must be"),
])
def test_mismatched_shapes_raise_input_error(call, message):
    with pytest.raises(InputError, match=message):
        call()


# -- parity with transformers ----------------------------------------------------------------------


@pytest.fixture
def reference():
    """tests.model.reference, whose import needs torch and transformers."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.model import reference

    return reference


def _padded(inputs, extra_rows=1):
    """Our batch: the real rows plus `extra_rows` of padding (ids and mask all zero), as a last
    eval batch carries."""
    return {k: np.concatenate([v, np.zeros((extra_rows, *v.shape[1:]), v.dtype)]) for k, v in inputs.items()}


def _pair(reference, head: str, seed: int, **overrides):
    """Our `head` with random parameters (biases and LayerNorms too) and transformers' twin
    holding the same weights; dropout off in both."""
    import torch
    import transformers

    hf_config = reference.hf_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                    classifier_dropout_prob=0.0, **overrides)
    ours = getattr(albert_jax, head)(albert_jax.AlbertConfig.from_dict(hf_config.to_dict()),
                                     rngs=nnx.Rngs(seed))
    state = nnx.state(ours, nnx.Param)
    rng = np.random.default_rng(seed)
    for _, variable in nnx.to_flat_state(state):
        variable.set_value(variable.get_value() + 0.05 * rng.standard_normal(variable.shape).astype(np.float32))
    nnx.update(ours, state)
    ours.eval()
    theirs = getattr(transformers, head)(hf_config)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in to_hf_state_dict(ours).items()}, strict=True)
    return ours, theirs.eval(), hf_config


def _check_parity(ours, theirs, our_loss_fn, hf_kwargs, *, constant=()):
    """Our mean loss and its gradient for every parameter against Hugging Face's `loss`.

    Every gradient but those named in `constant` must be non-zero, so a parameter the loss
    never reached cannot pass unnoticed.
    """
    graphdef, params, rest = nnx.split(ours, nnx.Param, ...)
    loss, grads = jax.jit(jax.value_and_grad(lambda p: our_loss_fn(nnx.merge(graphdef, p, rest))))(params)
    our_grads = params_to_hf(
        {path: np.asarray(v.get_value()) for path, v in nnx.to_flat_state(grads)}, ours.config)

    theirs.zero_grad()
    expected = theirs(**hf_kwargs).loss
    expected.backward()
    hf_grads = {name: p.grad.numpy() for name, p in theirs.named_parameters()}

    assert abs(float(loss) - expected.item()) <= 1e-5, (float(loss), expected.item())
    assert sorted(our_grads) == sorted(hf_grads)
    worst = max(hf_grads, key=lambda n: np.max(np.abs(our_grads[n] - hf_grads[n])))
    diff = float(np.max(np.abs(our_grads[worst] - hf_grads[worst])))
    assert diff <= 1e-5, f"gradient of {worst}: max abs difference {diff:.3g}"
    zero = sorted(name for name, grad in hf_grads.items() if not np.any(grad))
    assert zero == sorted(constant), f"parameters with zero gradient: {zero}"


def _torch(x, dtype=None):
    import torch

    x = torch.from_numpy(np.asarray(x))
    return x if dtype is None else x.to(dtype)


def test_sequence_classification_parity(reference):
    import torch

    ours, theirs, config = _pair(reference, "AlbertForSequenceClassification", seed=1, num_labels=3)
    inputs = reference.make_inputs(config)
    labels = np.array([2, 0, 1])
    weights = np.array([1, 1, 1, 0], np.float32)
    padded_labels = np.append(labels, -1)  # a padding row's label, as GLUE's test split has

    def loss_fn(model):
        logits = model(**_padded(inputs)).logits
        return losses.mean_loss(losses.classification_sums(logits, padded_labels, weights))

    _check_parity(ours, theirs, loss_fn,
                  dict(reference.torch_inputs(inputs), labels=_torch(labels, torch.long)))


def test_regression_parity(reference):
    ours, theirs, config = _pair(reference, "AlbertForSequenceClassification", seed=2, num_labels=1)
    inputs = reference.make_inputs(config)
    labels = np.array([0.3, -1.2, 2.5], np.float32)
    weights = np.array([1, 1, 1, 0], np.float32)

    def loss_fn(model):
        logits = model(**_padded(inputs)).logits
        return losses.mean_loss(losses.regression_sums(logits, np.append(labels, np.nan), weights))

    _check_parity(ours, theirs, loss_fn, dict(reference.torch_inputs(inputs), labels=_torch(labels)))


def test_multiple_choice_parity(reference):
    import torch

    ours, theirs, config = _pair(reference, "AlbertForMultipleChoice", seed=3)
    flat = reference.make_inputs(config)
    inputs = {k: np.stack([v, v[::-1], np.roll(v, 1, axis=0)], axis=1) for k, v in flat.items()}
    labels = np.array([2, 0, 1])
    weights = np.array([1, 1, 1, 0], np.float32)

    def loss_fn(model):
        logits = model(**_padded(inputs)).logits
        return losses.mean_loss(losses.multiple_choice_sums(logits, np.append(labels, -1), weights))

    # The one bias shifts every choice's score alike, which the softmax over choices cancels.
    _check_parity(ours, theirs, loss_fn,
                  dict(reference.torch_inputs(inputs), labels=_torch(labels, torch.long)),
                  constant=["classifier.bias"])


def test_token_classification_parity(reference):
    import torch

    ours, theirs, config = _pair(reference, "AlbertForTokenClassification", seed=4, num_labels=5)
    inputs = reference.make_inputs(config)
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 5, inputs["input_ids"].shape)
    # HF's convention: -100 on padding, on [CLS] and on some sub-word continuations.
    labels[inputs["attention_mask"] == 0] = -100
    labels[:, 0] = -100
    labels[0, [3, 4]] = labels[1, 2] = -100
    padded_labels = _padded({"labels": labels})["labels"]
    padded_labels[-1] = -100
    weights = (padded_labels != -100).astype(np.float32)

    def loss_fn(model):
        logits = model(**_padded(inputs)).logits
        return losses.mean_loss(losses.token_classification_sums(logits, padded_labels, weights))

    _check_parity(ours, theirs, loss_fn,
                  dict(reference.torch_inputs(inputs), labels=_torch(labels, torch.long)))


def test_question_answering_parity(reference):
    import torch

    ours, theirs, config = _pair(reference, "AlbertForQuestionAnswering", seed=5, num_labels=2)
    inputs = reference.make_inputs(config, batch=3, length=11)
    # Row 0 in the window; row 1 start clamped from -2 to [CLS], end past the window (ignored);
    # row 2 both past it: the start and end terms average over different counts.
    starts, ends = np.array([3, -2, 11]), np.array([5, 11, 40])
    weights = np.array([1, 1, 1, 0], np.float32)

    def loss_fn(model):
        out = model(**_padded(inputs))
        return losses.mean_loss(losses.question_answering_sums(
            out.start_logits, out.end_logits, np.append(starts, 0), np.append(ends, 0), weights))

    _check_parity(ours, theirs, loss_fn,
                  dict(reference.torch_inputs(inputs), start_positions=_torch(starts, torch.long),
                       end_positions=_torch(ends, torch.long)))
