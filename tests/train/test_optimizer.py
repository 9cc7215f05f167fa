"""LAMB and AdamW against a hand computation of the original TF optimizers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from albert_jax.train import optimizer as optimizer_lib

LR, WARMUP, STEPS = 0.1, 2, 10
B1, B2, EPS, WD, CLIP = 0.9, 0.999, 1e-6, 0.01, 1.0


def make_params():
    rng = np.random.default_rng(0)
    return {
        "dense": {"kernel": rng.normal(size=(3, 4)).astype(np.float32),
                  "bias": rng.normal(size=(4,)).astype(np.float32)},
        "LayerNorm": {"scale": rng.normal(size=(4,)).astype(np.float32),
                      "bias": np.zeros(4, np.float32)},
        # Two stacked layers: the trust ratio is taken per layer, as for separate variables.
        "layers": {"kernel": np.stack([rng.normal(size=(3, 3)), 5 * rng.normal(size=(3, 3))]).astype(np.float32)},
        # Zero weights: the trust ratio falls back to 1.
        "zero": {"kernel": np.zeros((2, 2), np.float32)},
    }


AXES = {"dense": {"kernel": -1, "bias": -1}, "LayerNorm": {"scale": -1, "bias": -1},
        "layers": {"kernel": 0}, "zero": {"kernel": -1}}
# The original excludes names matching "LayerNorm", "layer_norm" or "bias".
EXCLUDED = {("dense", "bias"), ("LayerNorm", "scale"), ("LayerNorm", "bias")}


def reference(params, grads_per_step, *, lamb):
    """The original optimization.py + lamb_optimizer.py, written out in numpy."""
    params = {k: {n: v.astype(np.float64) for n, v in d.items()} for k, d in params.items()}
    m = {k: {n: np.zeros_like(v) for n, v in d.items()} for k, d in params.items()}
    v = {k: {n: np.zeros_like(x) for n, x in d.items()} for k, d in params.items()}
    for step, grads in enumerate(grads_per_step):
        norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for d in grads.values() for g in d.values()))
        scale = CLIP / max(norm, CLIP)
        lr = LR * step / WARMUP if step < WARMUP else LR * (1 - step / STEPS)
        for k, d in params.items():
            for n, p in d.items():
                g = grads[k][n] * scale
                m[k][n] = B1 * m[k][n] + (1 - B1) * g
                v[k][n] = B2 * v[k][n] + (1 - B2) * g * g
                update = m[k][n] / (np.sqrt(v[k][n]) + EPS)
                if (k, n) not in EXCLUDED:
                    update = update + WD * p
                ratio = np.ones_like(p)
                if lamb and (k, n) not in EXCLUDED:
                    layers = [slice(None)] if AXES[k][n] == -1 else range(p.shape[0])
                    for i in layers:
                        w_norm, u_norm = np.linalg.norm(p[i]), np.linalg.norm(update[i])
                        ratio[i] = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
                params[k][n] = p - lr * ratio * update
    return params


@pytest.mark.parametrize("name", ["lamb", "adamw"])
def test_matches_the_original_by_hand(name):
    params = make_params()
    rng = np.random.default_rng(1)
    grads_per_step = [jax.tree.map(lambda p: (rng.normal(size=p.shape) * 0.7).astype(np.float32), params)
                      for _ in range(4)]
    schedule = optimizer_lib.learning_rate_schedule(LR, WARMUP, STEPS)
    optimizer = optimizer_lib.make_optimizer(name, learning_rate=schedule, weight_decay=WD,
                                             grad_clip_norm=CLIP, b1=B1, b2=B2, eps=EPS, layer_axes=AXES)
    ours = jax.tree.map(jnp.asarray, params)
    state = optimizer.init(ours)
    for grads in grads_per_step:
        updates, state = optimizer.update(grads, state, ours)
        ours = jax.tree.map(lambda p, u: p + u, ours, updates)
    expected = reference(params, grads_per_step, lamb=name == "lamb")
    for k, d in expected.items():
        for n, value in d.items():
            np.testing.assert_allclose(ours[k][n], value, rtol=2e-5, atol=1e-6, err_msg=f"{k}/{n}")


def test_lamb_and_adamw_differ_only_where_the_trust_ratio_applies():
    params = jax.tree.map(jnp.asarray, make_params())
    grads = jax.tree.map(lambda p: jnp.full(p.shape, 0.1), params)
    schedule = optimizer_lib.learning_rate_schedule(LR, 0, STEPS)
    results = {}
    for name in ("lamb", "adamw"):
        optimizer = optimizer_lib.make_optimizer(name, learning_rate=schedule, weight_decay=WD,
                                                 grad_clip_norm=CLIP, b1=B1, b2=B2, eps=EPS, layer_axes=AXES)
        results[name], _ = optimizer.update(grads, optimizer.init(params), params)
    for k, n in EXCLUDED | {("zero", "kernel")}:
        np.testing.assert_array_equal(results["lamb"][k][n], results["adamw"][k][n])
    for k, n in [("dense", "kernel"), ("layers", "kernel")]:
        assert not np.allclose(results["lamb"][k][n], results["adamw"][k][n])


def test_decay_mask_excludes_layer_norm_and_every_bias():
    mask = optimizer_lib.decay_mask(make_params())
    assert mask == {"dense": {"kernel": True, "bias": False}, "LayerNorm": {"scale": False, "bias": False},
                    "layers": {"kernel": True}, "zero": {"kernel": True}}


def test_schedule_warms_up_then_decays_to_zero():
    schedule = optimizer_lib.learning_rate_schedule(1.0, 4, 20)
    values = [float(schedule(step)) for step in (0, 2, 4, 10, 20, 25)]
    np.testing.assert_allclose(values, [0.0, 0.5, 0.8, 0.5, 0.0, 0.0], atol=1e-7)
