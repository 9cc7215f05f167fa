"""The pretraining heads: masked-LM and sentence-order prediction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from albert_jax.model.config import AlbertConfig
from albert_jax.model.dropout import dropout
from albert_jax.model.layers import Dense, activation, layer_norm
from albert_jax.model.sharding import constrain, param_init


class AlbertMLMHead(nnx.Module):
    """Dense H→E, activation, LayerNorm, then the decoder tied to the word embeddings plus a bias."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.dense = Dense((config.hidden_size,), (config.embedding_size,), config,
                           axes=("hidden", "embed"), rngs=rngs)
        self.LayerNorm = layer_norm(config.embedding_size, config, "embed", rngs)
        self.bias = nnx.Param(param_init(nnx.initializers.zeros, ("vocab",))(
            rngs.params(), (config.vocab_size,), jnp.dtype(config.param_dtype)))
        self.activation = activation(config.hidden_act)

    def __call__(self, hidden: jax.Array, word_embeddings: jax.Array) -> jax.Array:
        """Logits over the vocabulary, in float32 (the loss wants full precision)."""
        x = self.LayerNorm(self.activation(self.dense(hidden)))
        logits = jnp.einsum("...e,ve->...v", x, word_embeddings.astype(x.dtype),
                            preferred_element_type=jnp.float32)
        logits = logits + self.bias[...].astype(jnp.float32)
        return constrain(logits, ("batch", "length", "act_vocab")) if logits.ndim == 3 else logits


class AlbertSOPHead(nnx.Module):
    """Sentence-order prediction from the pooled output (label 1 = segments swapped)."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.dropout_rate = config.classifier_dropout_prob
        self.classifier = Dense((config.hidden_size,), (config.num_labels,), config,
                                axes=("hidden", None), rngs=rngs)

    def __call__(self, pooled: jax.Array, *, rngs=None) -> jax.Array:
        return self.classifier(dropout(pooled, self.dropout_rate, rngs)).astype(jnp.float32)
