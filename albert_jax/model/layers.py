"""The ALBERT encoder: embeddings, post-LN transformer layers, and the parameter-shared stack.

Module and parameter names follow Hugging Face's `modeling_albert.py` (word_embeddings,
LayerNorm, embedding_hidden_mapping_in, attention.query, ffn, ffn_output, full_layer_layer_norm),
so the mapping onto existing checkpoints stays one to one. Kernels are stored input-major
([in..., out...]) as JAX does; attention kernels keep heads as their own axis for tensor
parallelism.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from albert_jax.model.attention import AttentionMask, attention_weights, choose_implementation, fused_attention
from albert_jax.model.config import AlbertConfig
from albert_jax.model.dropout import DROPOUT_MASK, dropout
from albert_jax.model.sharding import constrain, param_init


def activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Activations by Hugging Face name; "gelu_new" is the tanh form the original ALBERT uses."""
    return {
        "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "relu": jax.nn.relu,
        "silu": jax.nn.silu,
        "swish": jax.nn.silu,
        "tanh": jnp.tanh,
        "linear": lambda x: x,
    }[name]


# Names the "matmuls" remat policy keeps for the backward pass (`_REMAT_POLICIES`).
DENSE_INPUT, DENSE_OUTPUT = "dense_input", "dense_output"


def _kernel_init(config: AlbertConfig, axes):
    # The original initialises every weight from a normal truncated at two standard deviations.
    return param_init(nnx.initializers.truncated_normal(stddev=config.initializer_range), axes)


class Dense(nnx.Module):
    """y = x·W + b, contracting the trailing `len(in_shape)` axes of x with W[in..., out...]."""

    def __init__(self, in_shape: tuple[int, ...], out_shape: tuple[int, ...], config: AlbertConfig,
                 *, axes: tuple[str | None, ...], rngs: nnx.Rngs):
        param_dtype = jnp.dtype(config.param_dtype)
        self.kernel = nnx.Param(_kernel_init(config, axes)(rngs.params(), in_shape + out_shape, param_dtype))
        bias_axes = axes[len(in_shape):]
        self.bias = nnx.Param(param_init(nnx.initializers.zeros, bias_axes)(rngs.params(), out_shape, param_dtype))
        self.num_in = len(in_shape)
        self.dtype = jnp.dtype(config.dtype)

    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.kernel[...].astype(self.dtype)
        contract = (tuple(range(x.ndim - self.num_in, x.ndim)), tuple(range(self.num_in)))
        x = checkpoint_name(x.astype(self.dtype), DENSE_INPUT)
        y = jax.lax.dot_general(x, kernel, (contract, ((), ())))
        return checkpoint_name(y + self.bias[...].astype(self.dtype), DENSE_OUTPUT)


def layer_norm(features: int, config: AlbertConfig, axis_name: str, rngs: nnx.Rngs) -> nnx.LayerNorm:
    # Statistics are computed in float32 whatever the compute dtype (flax upcasts internally).
    return nnx.LayerNorm(
        features, epsilon=config.layer_norm_eps, dtype=jnp.dtype(config.dtype),
        param_dtype=jnp.dtype(config.param_dtype),
        scale_init=param_init(nnx.initializers.ones, (axis_name,)),
        bias_init=param_init(nnx.initializers.zeros, (axis_name,)), rngs=rngs)


class Embedding(nnx.Module):
    def __init__(self, num: int, features: int, config: AlbertConfig, *, axes, rngs: nnx.Rngs):
        self.embedding = nnx.Param(_kernel_init(config, axes)(
            rngs.params(), (num, features), jnp.dtype(config.param_dtype)))
        self.dtype = jnp.dtype(config.dtype)

    def __call__(self, ids: jax.Array) -> jax.Array:
        return jnp.take(self.embedding[...], ids, axis=0).astype(self.dtype)


class AlbertEmbeddings(nnx.Module):
    """Word + position + token-type embeddings of size E, then LayerNorm and dropout."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        E = config.embedding_size
        self.word_embeddings = Embedding(config.vocab_size, E, config, axes=("vocab", "embed"), rngs=rngs)
        self.position_embeddings = Embedding(config.max_position_embeddings, E, config,
                                             axes=(None, "embed"), rngs=rngs)
        self.token_type_embeddings = Embedding(config.type_vocab_size, E, config,
                                               axes=(None, "embed"), rngs=rngs)
        self.LayerNorm = layer_norm(E, config, "embed", rngs)
        self.dropout_rate = config.hidden_dropout_prob

    def __call__(self, input_ids, token_type_ids, position_ids, *, rngs=None) -> jax.Array:
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings(position_ids))
        x = constrain(x, ("batch", "length", "act_embed"))
        return dropout(self.LayerNorm(x), self.dropout_rate, rngs)


def _softmax_attention(q, k, v, mask: AttentionMask, key, *, rate: float, dtype) -> jax.Array:
    """Explicit softmax attention with dropout on the probabilities: the "xla" implementation."""
    probs = dropout(attention_weights(q, k, mask, dtype=dtype), rate, key)
    return jnp.einsum("bnqk,bknd->bqnd", probs, v)


class AlbertAttention(nnx.Module):
    """Multi-head self-attention, output projection, dropout, then residual LayerNorm (post-LN)."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        H, N, D = config.hidden_size, config.num_attention_heads, config.head_dim
        self.query = Dense((H,), (N, D), config, axes=("hidden", "heads", "kv"), rngs=rngs)
        self.key = Dense((H,), (N, D), config, axes=("hidden", "heads", "kv"), rngs=rngs)
        self.value = Dense((H,), (N, D), config, axes=("hidden", "heads", "kv"), rngs=rngs)
        self.dense = Dense((N, D), (H,), config, axes=("heads", "kv", "hidden"), rngs=rngs)
        self.LayerNorm = layer_norm(H, config, "hidden", rngs)
        self.attention_dropout_rate = config.attention_probs_dropout_prob
        self.output_dropout_rate = config.hidden_dropout_prob
        self.implementation = config.attention_implementation
        self.recompute_probabilities = config.remat_policy == "cheap"
        self.dtype = jnp.dtype(config.dtype)

    def __call__(self, x: jax.Array, mask: AttentionMask, *, rngs=None) -> jax.Array:
        probs_key, output_key = jax.random.split(rngs) if rngs is not None else (None, None)
        heads = ("batch", "length", "act_heads", "act_kv")
        q = constrain(self.query(x), heads)
        k = constrain(self.key(x), heads)
        v = constrain(self.value(x), heads)
        dropout_on = self.attention_dropout_rate > 0 and probs_key is not None
        implementation = choose_implementation(self.implementation, q, dropout_on)
        if implementation == "xla":
            core = functools.partial(_softmax_attention, rate=self.attention_dropout_rate, dtype=self.dtype)
            if self.recompute_probabilities:
                core = jax.checkpoint(core)  # keeps only q, k, v and the key for the backward pass
            context = core(q, k, v, mask, probs_key)
        else:
            context = fused_attention(implementation, q, k, v, mask)
        context = constrain(context, heads)
        projected = dropout(self.dense(context), self.output_dropout_rate, output_key)
        return self.LayerNorm(x + projected)


class AlbertLayer(nnx.Module):
    """One transformer layer: attention block, then feed-forward block with residual LayerNorm.

    Dropout follows the original: after the feed-forward output too (Hugging Face's port omits it).
    """

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        H, I = config.hidden_size, config.intermediate_size
        self.attention = AlbertAttention(config, rngs=rngs)
        self.ffn = Dense((H,), (I,), config, axes=("hidden", "mlp"), rngs=rngs)
        self.ffn_output = Dense((I,), (H,), config, axes=("mlp", "hidden"), rngs=rngs)
        self.full_layer_layer_norm = layer_norm(H, config, "hidden", rngs)
        self.dropout_rate = config.hidden_dropout_prob
        self.activation = activation(config.hidden_act)
        self.recompute_activation = config.remat_policy == "cheap"

    def __call__(self, x: jax.Array, mask: AttentionMask, *, rngs=None) -> jax.Array:
        attention_key, ffn_key = jax.random.split(rngs) if rngs is not None else (None, None)
        x = self.attention(x, mask, rngs=attention_key)

        def activation_and_output(h):
            return self.ffn_output(constrain(self.activation(h), ("batch", "length", "act_mlp")))

        if self.recompute_activation:
            # Keeps only the activation's input: the B x S x I activation and the tanh inside
            # GELU are recomputed in the backward pass, elementwise work beside the matmuls.
            activation_and_output = jax.checkpoint(activation_and_output)
        h = dropout(activation_and_output(self.ffn(x)), self.dropout_rate, ffn_key)
        return constrain(self.full_layer_layer_norm(x + h), ("batch", "length", "act_hidden"))


_REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    # Keeps every dense layer's input and output and the dropout masks; recomputes the attention
    # scores, softmax and elementwise work. Drops the B x N x S x S residuals (most of the
    # memory at long sequences) for one more B x N x S x S matmul per layer application.
    "matmuls": jax.checkpoint_policies.save_only_these_names(DENSE_INPUT, DENSE_OUTPUT, DROPOUT_MASK),
}


class AlbertTransformer(nnx.Module):
    """E→H projection, then num_hidden_layers applications of parameter-shared layers.

    Application i uses group i·G/L (G = num_hidden_groups, L = num_hidden_layers), and a group is
    inner_group_num layers run in turn. The groups' parameters are stacked on a leading "layers"
    axis in (group, inner) order, and the applications run as nested `jax.lax.scan`s: over the
    groups, over the L/G repeats of a group (parameters broadcast), over its inner layers. The
    program holds one copy of the layer whatever L is, so compile time stays flat with depth.
    """

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.embedding_hidden_mapping_in = Dense(
            (config.embedding_size,), (config.hidden_size,), config, axes=("embed", "hidden"), rngs=rngs)

        @nnx.split_rngs(splits=config.num_hidden_groups * config.inner_group_num)
        @nnx.vmap(in_axes=(0,), out_axes=0,
                  transform_metadata={nnx.PARTITION_NAME: None, "logical_axes": "layers"})
        def stacked_layers(rngs):
            return AlbertLayer(config, rngs=rngs)

        self.albert_layers = stacked_layers(rngs)

    def __call__(self, x: jax.Array, mask: jax.Array, *, rngs=None) -> jax.Array:
        c = self.config
        groups, inner, repeats = c.num_hidden_groups, c.inner_group_num, c.num_hidden_layers // c.num_hidden_groups
        x = constrain(self.embedding_hidden_mapping_in(x), ("batch", "length", "act_hidden"))
        graphdef, params = nnx.split(self.albert_layers)
        params = jax.tree.map(lambda p: p.reshape(groups, inner, *p.shape[1:]), params)
        # One key per application: [groups, repeats, inner], so dropout differs every time.
        keys = None if rngs is None else jax.random.split(rngs, (groups, repeats, inner))

        def apply_layer(h, layer_params, key):
            return nnx.merge(graphdef, layer_params)(h, mask, rngs=key)

        if c.remat_policy in _REMAT_POLICIES:  # "cheap" acts inside the layer instead
            apply_layer = jax.checkpoint(apply_layer, policy=_REMAT_POLICIES[c.remat_policy],
                                         prevent_cse=False)

        unroll = not c.scan_layers

        def run_inner(h, xs):
            return apply_layer(h, *xs), None

        def run_group(h, xs):
            group_params, group_keys = xs

            def repeat(h, repeat_keys):
                return jax.lax.scan(run_inner, h, (group_params, repeat_keys), length=inner, unroll=unroll)[0], None

            return jax.lax.scan(repeat, h, group_keys, length=repeats, unroll=unroll)[0], None

        return jax.lax.scan(run_group, x, (params, keys), length=groups, unroll=unroll)[0]
