"""The original ALBERT's SQuAD 2.0 model (`run_squad_v2.py`, whose head comes from XLNet).

Unlike the simple span head (`AlbertForQuestionAnswering`: independent start and end logits per
token), this head conditions the end on the start and predicts answerability:

- start logits: one dense output per token;
- end logits given a start s: dense(2H -> H) over [token, token at s], tanh, LayerNorm,
  dense(H -> 1). Training feeds the gold start (teacher forcing); inference keeps the
  `start_n_top` best starts and, for each, the `end_n_top` best ends (5 x 5 in the original);
- answerability (`cls_logits`, higher = no answer): dense(2H -> H) over [the context pooled
  with the start probabilities as attention weights, the [CLS] token], tanh, dropout,
  dense(H -> 1), one logit per sequence whatever the span.

Positions where `p_mask` is 1 (question, [SEP], padding) can be neither start nor end; [CLS]
stays allowed, the answer of a window without one. Submodule and parameter names are those of
the original's variable scopes and of transformers' XLNet poolers (start_logits.dense,
end_logits.dense_0 / LayerNorm / dense_1, answer_class.dense_0 / dense_1). One difference:
answer_class.dense_1 has a bias (zero at the start) where the original has none, as every dense
layer here has one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx, struct

from albert_jax.errors import InputError
from albert_jax.model.config import AlbertConfig
from albert_jax.model.dropout import dropout
from albert_jax.model.layers import Dense, layer_norm
from albert_jax.model.models import AlbertModel, _AlbertWithHead

# What masked positions score before the softmax, as in the original (float32 throughout).
_MASKED = -1e30


@struct.dataclass
class SquadV2TrainingOutput:
    """The head given the gold starts (`start_positions`)."""

    start_log_probs: jax.Array  # [batch, length], log-softmax over the allowed positions
    end_log_probs: jax.Array  # [batch, length], given each row's gold start
    cls_logits: jax.Array  # [batch], answerability: higher means no answer


@struct.dataclass
class SquadV2Output:
    """The beam of the head at inference, under transformers' names and shapes."""

    start_top_log_probs: jax.Array  # [batch, start_n_top], best first
    start_top_index: jax.Array  # [batch, start_n_top]
    end_top_log_probs: jax.Array  # [batch, start_n_top * end_n_top]: ends of start i at i * end_n_top + j
    end_top_index: jax.Array  # [batch, start_n_top * end_n_top]
    cls_logits: jax.Array  # [batch]


class PoolerStartLogits(nnx.Module):
    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.dense = Dense((config.hidden_size,), (1,), config, axes=("hidden", None), rngs=rngs)

    def __call__(self, hidden: jax.Array) -> jax.Array:
        """[..., length, hidden] -> [..., length], float32."""
        return self.dense(hidden)[..., 0].astype(jnp.float32)


class PoolerEndLogits(nnx.Module):
    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        H = config.hidden_size
        self.dense_0 = Dense((2 * H,), (H,), config, axes=("hidden", None), rngs=rngs)
        self.LayerNorm = layer_norm(H, config, "hidden", rngs)
        self.dense_1 = Dense((H,), (1,), config, axes=("hidden", None), rngs=rngs)
        self.dtype = jnp.dtype(config.dtype)

    def __call__(self, hidden: jax.Array, start_states: jax.Array) -> jax.Array:
        """End logits [..., length] of each token given a start's hidden state.

        `hidden` [..., length, H] and `start_states` [..., 1, H] broadcast against each other:
        dense_0 of their concatenation is computed as the sum of its two halves, so the beam's
        [batch, start_n_top, length, 2H] input is never built.
        """
        H = hidden.shape[-1]
        kernel = self.dense_0.kernel[...].astype(self.dtype)
        x = (hidden.astype(self.dtype) @ kernel[:H] + start_states.astype(self.dtype) @ kernel[H:]
             + self.dense_0.bias[...].astype(self.dtype))
        x = self.LayerNorm(jnp.tanh(x))
        return self.dense_1(x)[..., 0].astype(jnp.float32)


class PoolerAnswerClass(nnx.Module):
    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        H = config.hidden_size
        self.dense_0 = Dense((2 * H,), (H,), config, axes=("hidden", None), rngs=rngs)
        self.dense_1 = Dense((H,), (1,), config, axes=("hidden", None), rngs=rngs)
        self.dropout_rate = config.classifier_dropout_prob

    def __call__(self, start_states: jax.Array, cls_states: jax.Array, *, rngs=None) -> jax.Array:
        """[batch, H] pooled start states and [CLS] states -> [batch] logits, float32."""
        x = jnp.tanh(self.dense_0(jnp.concatenate([start_states, cls_states.astype(start_states.dtype)], -1)))
        return self.dense_1(dropout(x, self.dropout_rate, rngs))[..., 0].astype(jnp.float32)


def _masked(logits: jax.Array, p_mask: jax.Array | None) -> jax.Array:
    return logits if p_mask is None else jnp.where(p_mask, _MASKED, logits)


def _check(name: str, x, shape: tuple[int, ...], integer: bool = True) -> jax.Array:
    x = jnp.asarray(x)
    if tuple(x.shape) != shape:
        raise InputError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if integer and not jnp.issubdtype(x.dtype, jnp.integer):
        raise InputError(f"{name} must be integers, got {x.dtype}")
    return x


class AlbertForSquadV2(_AlbertWithHead):
    """ALBERT with the original's SQuAD 2.0 head (see the module docstring)."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=False, rngs=rngs)
        self.start_logits = PoolerStartLogits(config, rngs=rngs)
        self.end_logits = PoolerEndLogits(config, rngs=rngs)
        self.answer_class = PoolerAnswerClass(config, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 p_mask=None, start_positions=None, *, start_n_top: int = 5, end_n_top: int = 5,
                 rngs=None, deterministic=None) -> SquadV2TrainingOutput | SquadV2Output:
        """With `start_positions` [batch] (training): every position's start and end
        log-probabilities, the end given that start. Without (inference): the beam of
        `start_n_top` starts times `end_n_top` ends. `p_mask` [batch, length] is 1 (or True)
        where no answer may start or end."""
        out, head_key = self._encode(input_ids, attention_mask, token_type_ids, position_ids,
                                     rngs, deterministic)
        hidden = out.last_hidden_state
        batch, length = hidden.shape[:2]
        if p_mask is not None:
            p_mask = _check("p_mask", p_mask, (batch, length), integer=False).astype(bool)
        start_logits = _masked(self.start_logits(hidden), p_mask)
        start_log_probs = jax.nn.log_softmax(start_logits, axis=-1)
        # Answerability sees the context pooled by where the answer would start, never the end,
        # so one logit serves every span of the window.
        pooled = jnp.einsum("blh,bl->bh", hidden.astype(jnp.float32), jax.nn.softmax(start_logits, axis=-1))
        cls_logits = self.answer_class(pooled.astype(hidden.dtype), hidden[:, 0], rngs=head_key)

        if start_positions is not None:
            start_positions = _check("start_positions", start_positions, (batch,))
            start_states = jnp.take_along_axis(hidden, start_positions[:, None, None].astype(jnp.int32), axis=1)
            end_logits = _masked(self.end_logits(hidden, start_states), p_mask)
            return SquadV2TrainingOutput(start_log_probs=start_log_probs,
                                         end_log_probs=jax.nn.log_softmax(end_logits, axis=-1),
                                         cls_logits=cls_logits)

        for name, k in (("start_n_top", start_n_top), ("end_n_top", end_n_top)):
            if not 1 <= k <= length:
                raise InputError(f"{name} must be between 1 and the length {length}, got {k}")
        start_top_log_probs, start_top_index = jax.lax.top_k(start_log_probs, start_n_top)
        start_states = jnp.take_along_axis(hidden, start_top_index[..., None], axis=1)  # [b, k, H]
        end_logits = self.end_logits(hidden[:, None], start_states[:, :, None])  # [b, k, length]
        end_logits = _masked(end_logits, None if p_mask is None else p_mask[:, None])
        end_top_log_probs, end_top_index = jax.lax.top_k(jax.nn.log_softmax(end_logits, axis=-1), end_n_top)
        return SquadV2Output(
            start_top_log_probs=start_top_log_probs, start_top_index=start_top_index,
            end_top_log_probs=end_top_log_probs.reshape(batch, start_n_top * end_n_top),
            end_top_index=end_top_index.reshape(batch, start_n_top * end_n_top), cls_logits=cls_logits)
