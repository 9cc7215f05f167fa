"""AlbertModel as a building block: inside another NNX module, and inside a Linen module."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen, nnx
from flax.nnx import bridge

from albert_jax import AlbertConfig, AlbertModel

CONFIG = AlbertConfig.preset("tiny")
IDS = np.random.default_rng(0).integers(5, 256, size=(2, 8)).astype(np.int32)


class Regressor(nnx.Module):
    """A user's NNX module: ALBERT encoder plus their own head."""

    def __init__(self, rngs: nnx.Rngs):
        self.encoder = AlbertModel(CONFIG, rngs=rngs)
        self.head = nnx.Linear(CONFIG.hidden_size, 1, rngs=rngs)

    def __call__(self, ids):
        return self.head(self.encoder(ids).pooler_output)[:, 0]


def test_inside_an_nnx_module_trains():
    model = Regressor(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    target = jnp.array([1.0, -1.0])

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(IDS) - target) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(20)]
    assert losses[-1] < 0.5 * losses[0]
    encoder_grads = nnx.grad(lambda m: jnp.sum(m(IDS)))(model)["encoder"]
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(encoder_grads))


class LinenClassifier(linen.Module):
    """A user's Linen module wrapping the NNX encoder through flax's bridge."""

    @linen.compact
    def __call__(self, ids, train: bool):
        rngs = self.make_rng("dropout") if train else None
        out = bridge.to_linen(AlbertModel, CONFIG)(ids, rngs=rngs, deterministic=not train)
        return linen.Dense(3)(out.pooler_output)


def test_inside_a_linen_module():
    model = LinenClassifier()
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, IDS, train=False)
    encoder_params = variables["params"]["ToLinen_0"]
    assert sum(x.size for x in jax.tree.leaves(encoder_params)) > 10_000
    logits = model.apply(variables, IDS, train=False)
    assert logits.shape == (2, 3)
    np.testing.assert_array_equal(logits, model.apply(variables, IDS, train=False))
    trained = model.apply(variables, IDS, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(trained, logits)  # dropout is on in training
