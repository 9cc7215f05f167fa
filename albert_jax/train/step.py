"""The pretraining loss and the jitted train and eval steps, built for a given mesh.

`build_program(config, mesh)` is the single place that turns a config into compiled-ready
functions with explicit shardings plus their abstract inputs, so the same step can run here or
be lowered ahead of time for a TPU topology (`program.train_step.lower(*program.train_args())`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from albert_jax.model.sharding import Rule
from albert_jax.train import config as config_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import optimizer as optimizer_lib
from albert_jax.train import state as state_lib
from albert_jax.train.state import ModelParts, Params, TrainState

Batch = dict[str, jax.Array]
# Batch fields and their rank; all int32 (see `data.pipeline.make_pretraining_iterator`).
BATCH_RANKS = {
    "input_ids": 2, "attention_mask": 2, "token_type_ids": 2,
    "masked_lm_positions": 2, "masked_lm_ids": 2, "masked_lm_weights": 2,
    "sentence_order_label": 1,
}
# Sums over examples, from which every loss and accuracy follows; they add up across
# microbatches and eval batches, so averages are exact whatever the split.
SUM_KEYS = ("mlm_nll", "mlm_correct", "mlm_count", "sop_nll", "sop_correct", "examples")


# -- loss -----------------------------------------------------------------------------------------


def pretraining_sums(model: nnx.Module, batch: Batch, dropout_key: jax.Array | None) -> dict[str, jax.Array]:
    """MLM at the masked positions (weighted by masked_lm_weights) and SOP, as sums."""
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                masked_lm_positions=batch["masked_lm_positions"], rngs=dropout_key)
    weights = batch["masked_lm_weights"].astype(jnp.float32)
    ids = batch["masked_lm_ids"]
    mlm_nll = optax.softmax_cross_entropy_with_integer_labels(out.prediction_logits, ids)
    mlm_hit = jnp.argmax(out.prediction_logits, axis=-1) == ids
    labels = batch["sentence_order_label"]
    sop_nll = optax.softmax_cross_entropy_with_integer_labels(out.sop_logits, labels)
    sop_hit = jnp.argmax(out.sop_logits, axis=-1) == labels
    return {
        "mlm_nll": jnp.sum(mlm_nll * weights),
        "mlm_correct": jnp.sum(mlm_hit * weights),
        "mlm_count": jnp.sum(weights),
        "sop_nll": jnp.sum(sop_nll),
        "sop_correct": jnp.sum(sop_hit.astype(jnp.float32)),
        "examples": jnp.asarray(labels.shape[0], jnp.float32),
    }


def metrics_from_sums(sums: dict[str, Any]) -> dict[str, Any]:
    """loss = mean MLM loss over all masked tokens + mean SOP loss over all examples."""
    count = jnp.maximum(sums["mlm_count"], 1.0)
    metrics = {
        "mlm_loss": sums["mlm_nll"] / count,
        "mlm_accuracy": sums["mlm_correct"] / count,
        "sop_loss": sums["sop_nll"] / sums["examples"],
        "sop_accuracy": sums["sop_correct"] / sums["examples"],
    }
    metrics["loss"] = metrics["mlm_loss"] + metrics["sop_loss"]
    return metrics


# -- the steps ------------------------------------------------------------------------------------


def _microbatches(batch: Batch, num: int, batch_spec: PartitionSpec) -> Batch:
    """[B, ...] -> [num, B/num, ...], microbatch i holding rows i, i+num, i+2*num, ...

    Strided rather than contiguous: every device keeps an equal share of every microbatch, so
    splitting moves no data between devices.
    """

    def split(x):
        x = x.reshape(x.shape[0] // num, num, *x.shape[1:]).swapaxes(0, 1)
        spec = PartitionSpec(None, *batch_spec, *([None] * (x.ndim - 2)))
        return jax.lax.with_sharding_constraint(x, spec)

    return jax.tree.map(split, batch)


def make_train_step(parts: ModelParts, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, *, seed: int, grad_accum_steps: int,
                    params_sharding: Params, batch_spec: PartitionSpec) -> Callable:
    """(state, batch) -> (state, metrics): one optimizer update over the whole global batch."""

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        # Fresh dropout randomness every step, reproducible from (seed, step) after a resume.
        key = jax.random.fold_in(jax.random.key(seed), state.step)
        # Normalisers of the whole batch, so microbatch losses (and gradients) simply add up.
        mlm_count = jnp.maximum(jnp.sum(batch["masked_lm_weights"].astype(jnp.float32)), 1.0)
        examples = batch["sentence_order_label"].shape[0]

        def loss_fn(params, micro, micro_key):
            sums = pretraining_sums(parts.merge(params, train=True), micro, micro_key)
            return sums["mlm_nll"] / mlm_count + sums["sop_nll"] / examples, sums

        grad_fn = jax.grad(loss_fn, has_aux=True)
        if grad_accum_steps == 1:
            grads, sums = grad_fn(state.params, batch, key)
        else:
            def accumulate(carry, xs):
                grads, sums = grad_fn(state.params, *xs)
                grads = jax.lax.with_sharding_constraint(grads, params_sharding)
                return jax.tree.map(jnp.add, carry, (grads, sums)), None

            zeros = (jax.tree.map(jnp.zeros_like, state.params),
                     {k: jnp.zeros((), jnp.float32) for k in SUM_KEYS})
            xs = (_microbatches(batch, grad_accum_steps, batch_spec),
                  jax.random.split(key, grad_accum_steps))
            (grads, sums), _ = jax.lax.scan(accumulate, zeros, xs)

        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = metrics_from_sums(sums)
        metrics["grad_norm"] = optax.tree.norm(grads)  # before clipping
        metrics["param_norm"] = optax.tree.norm(params)
        metrics["learning_rate"] = schedule(state.step)
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def make_eval_step(parts: ModelParts) -> Callable:
    """(params, batch) -> sums, without dropout; `metrics_from_sums` of their total over batches."""

    def eval_step(params: Params, batch: Batch) -> dict[str, jax.Array]:
        return pretraining_sums(parts.merge(params, train=False), batch, None)

    return eval_step


# -- the program for one mesh -------------------------------------------------------------------------


def _under_rules(fn: Callable, mesh: Mesh, rules: Sequence[Rule]) -> Callable:
    """Traces `fn` with the mesh and rules active, so the model's activation constraints apply."""

    @functools.wraps(fn)
    def wrapped(*args):
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh), nnx.logical_axis_rules(rules):
            return fn(*args)

    return wrapped


@dataclasses.dataclass(frozen=True)
class Program:
    """Everything that runs on the devices for one config and mesh.

    `init()`, `train_step(state, batch)` and `eval_step(params, batch)` are jitted with explicit
    shardings (the state is donated to the train step). `abstract_state` and `abstract_batch`
    are ShapeDtypeStructs carrying those shardings: they lower the step without any data.
    """

    mesh: Mesh
    rules: tuple[Rule, ...]
    parts: ModelParts
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule
    state_sharding: TrainState
    batch_sharding: dict[str, NamedSharding]
    abstract_state: TrainState
    abstract_batch: dict[str, jax.ShapeDtypeStruct]
    init: Callable[[], TrainState]
    init_from_params: Callable[[Params], TrainState]
    train_step: Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]
    eval_step: Callable[[Params, Batch], dict[str, jax.Array]]

    def train_args(self) -> tuple[TrainState, dict[str, jax.ShapeDtypeStruct]]:
        """Abstract arguments of `train_step`, for `train_step.lower(*program.train_args())`."""
        return self.abstract_state, self.abstract_batch


def build_program(config: ml_collections.ConfigDict, mesh: Mesh) -> Program:
    """The jitted init, train and eval steps of `config` on `mesh` (nothing is allocated yet).

    Raises InputError when the batch does not split over the mesh.
    """
    rules = tuple(tuple(rule) for rule in config.rules)
    mesh_lib.check_batch(config.global_batch_size, config.grad_accum_steps, mesh, rules)
    parts = ModelParts.create(config_lib.model_config(config))
    schedule = optimizer_lib.learning_rate_schedule(
        config.learning_rate, config.warmup_steps, config.num_train_steps)
    optimizer = optimizer_lib.make_optimizer(
        config.optimizer, learning_rate=schedule, weight_decay=config.weight_decay,
        grad_clip_norm=config.grad_clip_norm, b1=config.adam_beta1, b2=config.adam_beta2,
        eps=config.adam_epsilon, layer_axes=optimizer_lib.stacked_layer_axes(parts.param_state))

    params_sharding = state_lib.param_shardings(parts, mesh, rules)
    abstract_state = state_lib.abstract_train_state(parts, optimizer)
    state_sharding = state_lib.state_shardings(abstract_state, params_sharding, mesh)
    batch_sharding = {name: mesh_lib.batch_sharding(mesh, rules, rank)
                      for name, rank in BATCH_RANKS.items()}
    num_predictions = config_lib.data_config(config).num_prediction_slots
    widths = {"input_ids": config.seq_length, "attention_mask": config.seq_length,
              "token_type_ids": config.seq_length, "masked_lm_positions": num_predictions,
              "masked_lm_ids": num_predictions, "masked_lm_weights": num_predictions}
    abstract_batch = {
        name: jax.ShapeDtypeStruct((config.global_batch_size,) + ((widths[name],) if rank == 2 else ()),
                                   jnp.int32, sharding=batch_sharding[name])
        for name, rank in BATCH_RANKS.items()}
    replicated = NamedSharding(mesh, PartitionSpec())

    train_step = make_train_step(
        parts, optimizer, schedule, seed=config.seed, grad_accum_steps=config.grad_accum_steps,
        params_sharding=params_sharding, batch_spec=batch_sharding["sentence_order_label"].spec)
    return Program(
        mesh=mesh, rules=rules, parts=parts, optimizer=optimizer, schedule=schedule,
        state_sharding=state_sharding, batch_sharding=batch_sharding,
        abstract_state=state_lib.with_shardings(abstract_state, state_sharding),
        abstract_batch=abstract_batch,
        init=state_lib.make_init_fn(parts, optimizer, config.seed, state_sharding),
        init_from_params=state_lib.make_state_from_params(optimizer, state_sharding),
        train_step=jax.jit(_under_rules(train_step, mesh, rules),
                           in_shardings=(state_sharding, batch_sharding),
                           out_shardings=(state_sharding, replicated), donate_argnums=0),
        eval_step=jax.jit(_under_rules(make_eval_step(parts), mesh, rules),
                          in_shardings=(params_sharding, batch_sharding),
                          out_shardings=replicated),
    )
