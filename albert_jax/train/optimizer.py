"""LAMB and AdamW as the original ALBERT trained with them, and its learning-rate schedule.

The original (google-research/albert `optimization.py`, `lamb_optimizer.py`):
- gradients clipped to a global norm (1.0) before the optimizer sees them;
- first and second moments with beta1 0.9, beta2 0.999, and no bias correction:
  update = m / (sqrt(v) + eps);
- decoupled weight decay (0.01) added to the update, except for LayerNorm and bias parameters;
- LAMB only: the update of each weight matrix is scaled by ||w|| / ||update|| (1 where either
  norm is 0), with the same LayerNorm and bias exclusions;
- learning rate lr * (1 - step / num_train_steps), overridden during the first warmup steps by
  lr * step / warmup_steps. Step 0 therefore has learning rate 0, as in the original.

ALBERT's parameter sharing stacks the groups' layers on a leading "layers" axis; the trust ratio
is taken per layer of that stack, as if each were its own variable, as in the original.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

# Parameter names excluded from weight decay and from the trust ratio: LayerNorm scales and
# every bias (the original's exclusion list is ["LayerNorm", "layer_norm", "bias"]).
EXCLUDED_NAMES = frozenset({"scale", "bias"})


def learning_rate_schedule(learning_rate: float, warmup_steps: int, num_train_steps: int) -> optax.Schedule:
    """Linear warmup from 0, then the original's linear decay to 0 at num_train_steps."""

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        decay = learning_rate * jnp.maximum(0.0, 1.0 - step / num_train_steps)
        if warmup_steps == 0:
            return decay
        warmup = learning_rate * step / warmup_steps
        return jnp.where(step < warmup_steps, warmup, decay)

    return schedule


def decay_mask(params: Any) -> Any:
    """True for parameters that get weight decay and the trust ratio (not LayerNorm or bias)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) not in EXCLUDED_NAMES, params)


def stacked_layer_axes(param_state: nnx.State) -> Any:
    """Per parameter (as a pure dict), the index of its stacked "layers" axis or -1, read from
    the `logical_axes` metadata."""

    def axis(variable):
        names = tuple(variable.get_metadata().get("logical_axes") or ())
        return names.index("layers") if "layers" in names else -1

    return nnx.to_pure_dict(jax.tree.map(axis, param_state, is_leaf=lambda x: isinstance(x, nnx.Variable)))


class MomentsState(NamedTuple):
    mu: Any
    nu: Any


def scale_by_moments(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """m / (sqrt(v) + eps) with the moments' running averages, without bias correction."""

    def init(params):
        return MomentsState(mu=jax.tree.map(jnp.zeros_like, params),
                            nu=jax.tree.map(jnp.zeros_like, params))

    def update(grads, state, params=None):
        del params
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g), state.nu, grads)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu, nu)
        return updates, MomentsState(mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def scale_by_layerwise_trust_ratio(axes: Any) -> optax.GradientTransformation:
    """LAMB's ||w|| / ||update||, per parameter and per slice of its stacked-layers axis
    (`axes`: that axis's index per parameter, or -1). LayerNorm and bias parameters
    (`decay_mask` False) pass unchanged."""

    def ratio(update, param, layer_axis):
        reduce = tuple(i for i in range(param.ndim) if i != layer_axis)
        w_norm = jnp.sqrt(jnp.sum(jnp.square(param), axis=reduce, keepdims=True))
        u_norm = jnp.sqrt(jnp.sum(jnp.square(update), axis=reduce, keepdims=True))
        safe = (w_norm > 0) & (u_norm > 0)
        return update * jnp.where(safe, w_norm / jnp.where(safe, u_norm, 1.0), 1.0)

    def update(updates, state, params):
        scaled = jax.tree.map(lambda u, p, a, m: ratio(u, p, a) if m else u,
                              updates, params, axes, decay_mask(params))
        return scaled, state

    return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(name: str, *, learning_rate: optax.Schedule, weight_decay: float,
                   grad_clip_norm: float, b1: float, b2: float, eps: float,
                   layer_axes: Any) -> optax.GradientTransformation:
    """LAMB ("lamb") or AdamW ("adamw") as in the original, over a pure-dict parameter tree.

    `layer_axes` (see `stacked_layer_axes`) places LAMB's trust ratio per stacked layer.
    """
    steps = [
        optax.clip_by_global_norm(grad_clip_norm),
        scale_by_moments(b1, b2, eps),
        optax.add_decayed_weights(weight_decay, decay_mask),
    ]
    if name == "lamb":
        steps.append(scale_by_layerwise_trust_ratio(layer_axes))
    elif name != "adamw":
        raise ValueError(f"unknown optimizer {name!r}")
    steps.append(optax.scale_by_learning_rate(learning_rate))
    return optax.chain(*steps)
