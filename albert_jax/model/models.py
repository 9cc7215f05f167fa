"""ALBERT models: the base encoder and one class per task head, as in Hugging Face.

Every model is called as `model(input_ids, attention_mask=None, token_type_ids=None,
position_ids=None, *, rngs=None, deterministic=None)`; `model.train()` / `model.eval()` turn
dropout on and off, and `deterministic=` overrides that for one call (handy under Linen).
Packed rows (several examples per row, as `data.packing` makes them) pass `segment_ids`
[batch, length] (1, 2, ... per example, 0 for padding) in place of `attention_mask`: tokens then
attend only within their example, and positions restart per example unless `position_ids` are
given. Models with a pooler take `cls_positions` [batch, examples] too, and pool at each
example's [CLS] (pooled outputs and their logits gain an examples axis).
`rngs` is an optional dropout key (a jax PRNG key or an `nnx.Rngs`); without it the model draws
from the `dropout` (or `default`) stream it was built with. Outputs carry Hugging Face's names.

Shapes are always checked. Index values (input_ids < vocab_size, token_type_ids <
type_vocab_size, position_ids < max_position_embeddings, masked_lm_positions < length, none
negative) are checked, with InputError naming the argument, when they are concrete arrays. Under
`jit` they are tracers and cannot be checked: there, as in any JAX gather, an index past the end
gives NaN embeddings (so NaN outputs and loss) and a negative index counts from the end, so
validate ids where they are made (the data pipeline does).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from albert_jax.errors import InputError
from albert_jax.model.attention import AttentionMask
from albert_jax.model.config import AlbertConfig
from albert_jax.model.dropout import dropout
from albert_jax.model.heads import AlbertMLMHead, AlbertSOPHead
from albert_jax.model.layers import AlbertEmbeddings, AlbertTransformer, Dense
from albert_jax.model.pretrained import PretrainedMixin
from albert_jax.model.sharding import constrain


@struct.dataclass
class AlbertModelOutput:
    last_hidden_state: jax.Array  # [batch, length, hidden]
    pooler_output: jax.Array | None  # [batch, hidden], or [batch, examples, hidden] for packed rows


@struct.dataclass
class AlbertForPreTrainingOutput:
    prediction_logits: jax.Array  # [batch, length or predictions, vocab]
    sop_logits: jax.Array  # [batch, 2], or [batch, examples, 2] for packed rows


@struct.dataclass
class LogitsOutput:
    logits: jax.Array


@struct.dataclass
class QuestionAnsweringOutput:
    start_logits: jax.Array  # [batch, length]
    end_logits: jax.Array


def _check_rank(name: str, x, rank: int, what: str):
    if x.ndim != rank:
        raise InputError(f"{name} must be {what} (rank {rank}), got shape {tuple(x.shape)}")


def _check_range(name: str, x: jax.Array, bound: int, bound_name: str) -> None:
    """Raises unless 0 <= x < bound; a no-op under jit, where the values are not known."""
    if isinstance(x, jax.core.Tracer) or x.size == 0:
        return
    # In numpy: inside a trace (make_jaxpr, grad) even a concrete array's jnp.min is staged.
    values = np.asarray(x)
    low, high = int(values.min()), int(values.max())
    if low < 0:
        raise InputError(f"{name} holds {low}; it must not be negative")
    if high >= bound:
        raise InputError(f"{name} holds {high}; it must be less than {bound_name} ({bound})")


def _positions_in_segments(segment_ids: jax.Array) -> jax.Array:
    """Each token's offset from the first token of its segment: positions restart per example."""
    index = jnp.arange(segment_ids.shape[1], dtype=jnp.int32)
    first = jnp.concatenate([jnp.ones_like(segment_ids[:, :1], bool),
                             segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
    return index - jax.lax.cummax(jnp.where(first, index, 0), axis=1)


def _check_inputs(config: AlbertConfig, input_ids, attention_mask, token_type_ids, position_ids,
                  segment_ids=None):
    """Validates shapes (never broadcasts silently) and, on concrete arrays, index ranges, and
    fills in Hugging Face's defaults. Returns the ids, the AttentionMask, the token type ids
    and the position ids."""
    input_ids = jnp.asarray(input_ids)
    _check_rank("input_ids", input_ids, 2, "[batch, length]")
    if not jnp.issubdtype(input_ids.dtype, jnp.integer):
        raise InputError(f"input_ids must be integers, got {input_ids.dtype}")
    batch, length = input_ids.shape
    if length > config.max_position_embeddings:
        raise InputError(f"input_ids has length {length}, more than max_position_embeddings="
                         f"{config.max_position_embeddings}")
    defaults = {
        "attention_mask": lambda: jnp.ones((batch, length), bool),
        "token_type_ids": lambda: jnp.zeros((batch, length), jnp.int32),
        "position_ids": lambda: jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (batch, length)),
    }
    if segment_ids is not None and attention_mask is not None:
        raise InputError("give attention_mask or segment_ids, not both (segment id 0 is padding)")
    given = {"segment_ids": segment_ids, "attention_mask": attention_mask,
             "token_type_ids": token_type_ids, "position_ids": position_ids}
    out = {}
    for name, value in given.items():
        if value is None:
            if name == "position_ids" and segment_ids is not None:
                out[name] = _positions_in_segments(out["segment_ids"])
            elif name in defaults:
                out[name] = defaults[name]()
            continue
        value = jnp.asarray(value)
        if value.shape != input_ids.shape:
            raise InputError(f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, "
                             f"got {tuple(value.shape)}")
        out[name] = value
    if segment_ids is not None and not jnp.issubdtype(out["segment_ids"].dtype, jnp.integer):
        raise InputError(f"segment_ids must be integers, got {out['segment_ids'].dtype}")
    _check_range("input_ids", input_ids, config.vocab_size, "vocab_size")
    if token_type_ids is not None:
        _check_range("token_type_ids", out["token_type_ids"], config.type_vocab_size, "type_vocab_size")
    if position_ids is not None:
        _check_range("position_ids", out["position_ids"], config.max_position_embeddings,
                     "max_position_embeddings")
    if segment_ids is None:
        mask = AttentionMask.from_padding(out["attention_mask"])
    else:
        mask = AttentionMask(out["segment_ids"].astype(jnp.int32), packed=True)
    return input_ids, mask, out["token_type_ids"], out["position_ids"]


class AlbertModel(PretrainedMixin, nnx.Module):
    """Embeddings, the parameter-shared encoder, and (by default) the tanh pooler over [CLS]."""

    def __init__(self, config: AlbertConfig, *, add_pooling_layer: bool = True, rngs: nnx.Rngs):
        self.config = config
        self.embeddings = AlbertEmbeddings(config, rngs=rngs)
        self.encoder = AlbertTransformer(config, rngs=rngs)
        self.pooler = (Dense((config.hidden_size,), (config.hidden_size,), config,
                             axes=("hidden", None), rngs=rngs) if add_pooling_layer else None)
        try:
            self.dropout_rngs = rngs.dropout.fork()
        except AttributeError:  # e.g. built by Linen's bridge with a "params" stream only
            self.dropout_rngs = None
        # Flipped by model.train() / model.eval().
        self.deterministic = False

    def dropout_key(self, rngs=None, deterministic: bool | None = None) -> jax.Array | None:
        """This call's dropout key, or None when dropout is off (eval mode or all rates zero)."""
        c = self.config
        if self.deterministic if deterministic is None else deterministic:
            return None
        if not (c.hidden_dropout_prob or c.attention_probs_dropout_prob or c.classifier_dropout_prob):
            return None
        if isinstance(rngs, nnx.Rngs):
            return rngs.dropout()
        if rngs is not None:
            return rngs
        if self.dropout_rngs is None:
            raise InputError("dropout is on (train mode) but the model has no dropout stream: pass "
                             "rngs=<key>, deterministic=True, or call model.eval()")
        return self.dropout_rngs()

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 *, segment_ids=None, cls_positions=None, rngs=None,
                 deterministic: bool | None = None) -> AlbertModelOutput:
        """Arguments and their checks as in the module docstring: index ranges raise InputError
        on concrete arrays only; under jit an out-of-range id gives NaN or a wrapped index.
        With `cls_positions` [batch, examples] the pooled output is [batch, examples, hidden]."""
        input_ids, mask, token_type_ids, position_ids = _check_inputs(
            self.config, input_ids, attention_mask, token_type_ids, position_ids, segment_ids)
        if segment_ids is not None and cls_positions is not None:
            mask = mask.replace(max_segments=jnp.shape(cls_positions)[-1])
        key = self.dropout_key(rngs, deterministic)
        embedding_key, encoder_key = jax.random.split(key) if key is not None else (None, None)
        x = self.embeddings(input_ids, token_type_ids, position_ids, rngs=embedding_key)
        hidden = self.encoder(x, mask, rngs=encoder_key)
        pooled = None
        if self.pooler is not None:
            cls = hidden[:, 0] if cls_positions is None else _gather_positions(hidden, cls_positions, "cls_positions")
            pooled = jnp.tanh(self.pooler(cls))
        return AlbertModelOutput(last_hidden_state=hidden, pooler_output=pooled)


def _gather_positions(hidden: jax.Array, positions, name: str = "masked_lm_positions") -> jax.Array:
    """hidden[b, positions[b, p]] -> [batch, positions, hidden]; `name` names the argument."""
    positions = jnp.asarray(positions)
    _check_rank(name, positions, 2, "[batch, positions]")
    if positions.shape[0] != hidden.shape[0]:
        raise InputError(f"{name} has batch {positions.shape[0]}, input_ids has {hidden.shape[0]}")
    if not jnp.issubdtype(positions.dtype, jnp.integer):
        raise InputError(f"{name} must be integers, got {positions.dtype}")
    _check_range(name, positions, hidden.shape[1], "the input length")
    gathered = jnp.take_along_axis(hidden, positions[..., None].astype(jnp.int32), axis=1)
    return constrain(gathered, ("batch", "length", "act_hidden"))


class _AlbertWithHead(PretrainedMixin, nnx.Module):
    """A task model: `self.albert` (the base model) plus heads; splits the dropout key for both."""

    def _encode(self, input_ids, attention_mask, token_type_ids, position_ids,
                rngs, deterministic, **packing):
        """`packing`: the base model's `segment_ids` and `cls_positions`, where given."""
        key = self.albert.dropout_key(rngs, deterministic)
        encoder_key, head_key = jax.random.split(key) if key is not None else (None, None)
        out = self.albert(input_ids, attention_mask, token_type_ids, position_ids,
                          rngs=encoder_key, deterministic=key is None, **packing)
        return out, head_key


class AlbertForPreTraining(_AlbertWithHead):
    """Masked-LM and sentence-order-prediction heads, as in pretraining."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.albert = AlbertModel(config, rngs=rngs)
        self.predictions = AlbertMLMHead(config, rngs=rngs)
        self.sop_classifier = AlbertSOPHead(config, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 masked_lm_positions=None, *, segment_ids=None, cls_positions=None, rngs=None,
                 deterministic=None) -> AlbertForPreTrainingOutput:
        """With `masked_lm_positions` [batch, predictions], the MLM head runs only there (as the
        original does); without, at every position (as Hugging Face does). Packed rows give
        `segment_ids` and `cls_positions` [batch, examples]: `sop_logits` are then
        [batch, examples, 2], one prediction per example."""
        out, head_key = self._encode(input_ids, attention_mask, token_type_ids, position_ids,
                                     rngs, deterministic, segment_ids=segment_ids,
                                     cls_positions=cls_positions)
        hidden = out.last_hidden_state
        if masked_lm_positions is not None:
            hidden = _gather_positions(hidden, masked_lm_positions)
        word_embeddings = self.albert.embeddings.word_embeddings.embedding[...]
        return AlbertForPreTrainingOutput(
            prediction_logits=self.predictions(hidden, word_embeddings),
            sop_logits=self.sop_classifier(out.pooler_output, rngs=head_key))


class AlbertForMaskedLM(_AlbertWithHead):
    """The masked-LM head alone (no pooler, as in Hugging Face)."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=False, rngs=rngs)
        self.predictions = AlbertMLMHead(config, rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 masked_lm_positions=None, *, rngs=None,
                 deterministic=None) -> LogitsOutput:
        out, _ = self._encode(input_ids, attention_mask, token_type_ids, position_ids,
                                     rngs, deterministic)
        hidden = out.last_hidden_state
        if masked_lm_positions is not None:
            hidden = _gather_positions(hidden, masked_lm_positions)
        word_embeddings = self.albert.embeddings.word_embeddings.embedding[...]
        return LogitsOutput(logits=self.predictions(hidden, word_embeddings))


class AlbertForSequenceClassification(_AlbertWithHead):
    """Pooled output → dropout → `num_labels` logits; num_labels=1 means regression."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.albert = AlbertModel(config, rngs=rngs)
        self.dropout_rate = config.classifier_dropout_prob
        self.classifier = Dense((config.hidden_size,), (config.num_labels,), config,
                                axes=("hidden", None), rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 *, segment_ids=None, cls_positions=None, rngs=None, deterministic=None) -> LogitsOutput:
        """Packed rows give `segment_ids` and `cls_positions` [batch, examples]: `logits` are
        then [batch, examples, num_labels], one prediction per example."""
        out, head_key = self._encode(input_ids, attention_mask, token_type_ids, position_ids,
                                     rngs, deterministic, segment_ids=segment_ids,
                                     cls_positions=cls_positions)
        pooled = dropout(out.pooler_output, self.dropout_rate, head_key)
        return LogitsOutput(logits=self.classifier(pooled).astype(jnp.float32))


class AlbertForTokenClassification(_AlbertWithHead):
    """Per-token dropout → `num_labels` logits [batch, length, num_labels]."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=False, rngs=rngs)
        self.dropout_rate = config.classifier_dropout_prob
        self.classifier = Dense((config.hidden_size,), (config.num_labels,), config,
                                axes=("hidden", None), rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 *, segment_ids=None, cls_positions=None, rngs=None, deterministic=None) -> LogitsOutput:
        """Packed rows give `segment_ids` and may give `cls_positions` [batch, examples]: no
        pooling here, but their width bounds the examples per row for cuDNN's packed layout."""
        out, head_key = self._encode(input_ids, attention_mask, token_type_ids, position_ids,
                                     rngs, deterministic, segment_ids=segment_ids,
                                     cls_positions=cls_positions)
        hidden = dropout(out.last_hidden_state, self.dropout_rate, head_key)
        return LogitsOutput(logits=self.classifier(hidden).astype(jnp.float32))


class AlbertForQuestionAnswering(_AlbertWithHead):
    """Span extraction: start and end logits per token (config.num_labels must be 2)."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        if config.num_labels != 2:
            raise InputError(f"AlbertForQuestionAnswering needs num_labels=2 (start, end), "
                             f"got {config.num_labels}")
        self.config = config
        self.albert = AlbertModel(config, add_pooling_layer=False, rngs=rngs)
        self.qa_outputs = Dense((config.hidden_size,), (2,), config, axes=("hidden", None), rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 *, rngs=None, deterministic=None) -> QuestionAnsweringOutput:
        out, _ = self._encode(input_ids, attention_mask, token_type_ids, position_ids,
                                     rngs, deterministic)
        logits = self.qa_outputs(out.last_hidden_state).astype(jnp.float32)
        return QuestionAnsweringOutput(start_logits=logits[..., 0], end_logits=logits[..., 1])


class AlbertForMultipleChoice(_AlbertWithHead):
    """Inputs [batch, choices, length]; one score per choice from each pooled output."""

    def __init__(self, config: AlbertConfig, *, rngs: nnx.Rngs):
        self.config = config
        self.albert = AlbertModel(config, rngs=rngs)
        self.dropout_rate = config.classifier_dropout_prob
        self.classifier = Dense((config.hidden_size,), (1,), config, axes=("hidden", None), rngs=rngs)

    def __call__(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                 *, rngs=None, deterministic=None) -> LogitsOutput:
        input_ids = jnp.asarray(input_ids)
        _check_rank("input_ids", input_ids, 3, "[batch, choices, length]")
        batch, choices, length = input_ids.shape

        def flat(name, x):
            if x is None:
                return None
            x = jnp.asarray(x)
            if x.shape != input_ids.shape:
                raise InputError(f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(x.shape)}")
            return x.reshape(batch * choices, length)

        out, head_key = self._encode(flat("input_ids", input_ids), flat("attention_mask", attention_mask),
                                     flat("token_type_ids", token_type_ids),
                                     flat("position_ids", position_ids), rngs, deterministic)
        scores = self.classifier(dropout(out.pooler_output, self.dropout_rate, head_key))
        return LogitsOutput(logits=scores.astype(jnp.float32).reshape(batch, choices))
