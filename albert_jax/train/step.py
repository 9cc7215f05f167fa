"""The jitted train and eval steps of a run's task, built for a given mesh.

`build_program(run, mesh)` is the single place that turns a resolved config into compiled-ready
functions with explicit shardings plus their abstract inputs, so the same step can run here or
be lowered ahead of time for a TPU topology (`program.train_step.lower(*program.train_args())`).
The task (`train.task.Task`) supplies the model class, the batch contract and the loss; the
steps are the same for every task.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from albert_jax.model.sharding import Rule
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import optimizer as optimizer_lib
from albert_jax.train import state as state_lib
from albert_jax.train.config import Run
from albert_jax.train.state import ModelParts, Params, TrainState
from albert_jax.train.task import Batch, Sums, Task

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


def make_train_step(parts: ModelParts, task: Task, optimizer: optax.GradientTransformation,
                    schedule: optax.Schedule, *, seed: int, grad_accum_steps: int,
                    params_sharding: Params, batch_spec: PartitionSpec) -> Callable:
    """(state, batch) -> (state, metrics): one optimizer update over the whole global batch, or
    none when the update is not finite (then `metrics["skipped"]` is 1)."""

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        # Fresh dropout randomness every step, reproducible from (seed, step) after a resume.
        key = jax.random.fold_in(jax.random.key(seed), state.step)
        # Normalisers of the whole batch, so microbatch losses (and gradients) simply add up.
        normalisers = task.normalisers(batch)

        def loss_fn(params, micro, micro_key):
            sums = task.sums(parts.merge(params, train=True), micro, micro_key)
            return task.loss(sums, normalisers), sums

        grad_fn = jax.grad(loss_fn, has_aux=True)
        if grad_accum_steps == 1:
            grads, sums = grad_fn(state.params, batch, key)
        else:
            def accumulate(carry, xs):
                grads, sums = grad_fn(state.params, *xs)
                grads = jax.lax.with_sharding_constraint(grads, params_sharding)
                return jax.tree.map(jnp.add, carry, (grads, sums)), None

            zeros = (jax.tree.map(jnp.zeros_like, state.params),
                     {k: jnp.zeros((), jnp.float32) for k in task.sum_keys})
            xs = (_microbatches(batch, grad_accum_steps, batch_spec),
                  jax.random.split(key, grad_accum_steps))
            (grads, sums), _ = jax.lax.scan(accumulate, zeros, xs)

        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(task.metrics(sums))
        metrics["grad_norm"] = optax.tree.norm(grads)  # before clipping
        # A non-finite loss, gradient or result is never applied: the step keeps the parameters
        # and optimizer state it was given (and still counts as a step, so the data and the
        # learning rate move on). The loop skips or stops on it (`nonfinite`); deciding here
        # costs a select per array and no trip to the host.
        finite = (jnp.isfinite(metrics["loss"]) & jnp.isfinite(metrics["grad_norm"])
                  & jnp.isfinite(optax.tree.norm(params)))
        params, opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                         (params, opt_state), (state.params, state.opt_state))
        metrics["skipped"] = 1.0 - finite.astype(jnp.float32)
        metrics["param_norm"] = optax.tree.norm(params)
        metrics["learning_rate"] = schedule(state.step)
        return TrainState(state.step + 1, params, opt_state), metrics

    return train_step


def repeat_train_step(train_step: Callable) -> Callable:
    """(state, batches) -> (state, metrics): the train step over each batch of `batches` in turn
    (every field with a leading axis of N batches), in one execution; each metric gets that
    leading axis too.

    The same updates as N calls of `train_step`. It saves N - 1 trips through the host, and
    on a CPU the step's working memory is mapped (and zeroed by the kernel) once per execution
    rather than once per step.
    """

    def train_steps(state: TrainState, batches: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        return jax.lax.scan(train_step, state, batches)

    return train_steps


def make_eval_step(parts: ModelParts, task: Task) -> Callable:
    """(params, batch) -> (sums, per-example outputs), without dropout."""

    def eval_step(params: Params, batch: Batch) -> tuple[Sums, dict[str, jax.Array]]:
        return task.eval_outputs(parts.merge(params, train=False), batch)

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
    abstract_batches: dict[int, dict[str, jax.ShapeDtypeStruct]]  # by sequence length
    init: Callable[[], TrainState]
    init_from_params: Callable[[Params], TrainState]
    train_step: Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]
    train_steps: Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]  # N at once
    eval_step: Callable[[Params, Batch], tuple[Sums, dict[str, jax.Array]]]

    @property
    def abstract_batch(self) -> dict[str, jax.ShapeDtypeStruct]:
        """The batch at the full length."""
        return self.abstract_batches[max(self.abstract_batches)]

    def train_args(self) -> tuple[TrainState, dict[str, jax.ShapeDtypeStruct]]:
        """Abstract arguments of `train_step` at the full length, for
        `train_step.lower(*program.train_args())`."""
        return self.abstract_state, self.abstract_batch

    def abstract_batches_of(self, count: int, length: int) -> dict[str, jax.ShapeDtypeStruct]:
        """The argument `batches` of `train_steps` for `count` batches of width `length`."""
        return {name: jax.ShapeDtypeStruct((count, *spec.shape), spec.dtype,
                                           sharding=_stacked(spec.sharding))
                for name, spec in self.abstract_batches[length].items()}


def _stacked(sharding: NamedSharding) -> NamedSharding:
    """The sharding of a stack of batches: each batch as `sharding` says, the stack unsplit."""
    return NamedSharding(sharding.mesh, PartitionSpec(None, *sharding.spec))


def build_program(run: Run, mesh: Mesh) -> Program:
    """The jitted init, train and eval steps of `run` on `mesh` (nothing is allocated yet).

    Raises InputError when the batch does not split over the mesh.
    """
    # Dropout keys split the same way whatever the sharding, so a mesh changes no mask (it is
    # JAX's default today; a training framework must not depend on a default).
    jax.config.update("jax_threefry_partitionable", True)
    config, task = run.config, run.task
    rules = tuple(tuple(rule) for rule in config.rules)
    mesh_lib.check_batch(config.global_batch_size, config.grad_accum_steps, mesh, rules)
    parts = ModelParts.create(run.model, task.model_class)
    schedule = optimizer_lib.learning_rate_schedule(
        config.learning_rate, config.warmup_steps, config.num_train_steps)
    optimizer = optimizer_lib.make_optimizer(
        config.optimizer, learning_rate=schedule, weight_decay=config.weight_decay,
        grad_clip_norm=config.grad_clip_norm, b1=config.adam_beta1, b2=config.adam_beta2,
        eps=config.adam_epsilon, layer_axes=optimizer_lib.stacked_layer_axes(parts.param_state))

    params_sharding = state_lib.param_shardings(parts, mesh, rules)
    abstract_state = state_lib.abstract_train_state(parts, optimizer)
    state_sharding = state_lib.state_shardings(abstract_state, params_sharding, mesh)
    spec = task.example_spec(task.lengths[-1])
    batch_sharding = {name: mesh_lib.batch_sharding(mesh, rules, 1 + len(shape))
                      for name, (shape, _) in spec.items()}
    abstract_batches = {
        length: {name: jax.ShapeDtypeStruct((config.global_batch_size, *shape), dtype,
                                            sharding=batch_sharding[name])
                 for name, (shape, dtype) in task.example_spec(length).items()}
        for length in task.lengths}
    rows_spec = mesh_lib.batch_sharding(mesh, rules, 1).spec
    replicated = NamedSharding(mesh, PartitionSpec())

    train_step = make_train_step(
        parts, task, optimizer, schedule, seed=config.seed, grad_accum_steps=config.grad_accum_steps,
        params_sharding=params_sharding, batch_spec=rows_spec)
    train_steps = _under_rules(repeat_train_step(train_step), mesh, rules)
    return Program(
        mesh=mesh, rules=rules, parts=parts, optimizer=optimizer, schedule=schedule,
        state_sharding=state_sharding, batch_sharding=batch_sharding,
        abstract_state=state_lib.with_shardings(abstract_state, state_sharding),
        abstract_batches=abstract_batches,
        init=state_lib.make_init_fn(parts, optimizer, config.seed, state_sharding),
        init_from_params=state_lib.make_state_from_params(optimizer, state_sharding),
        train_step=jax.jit(_under_rules(train_step, mesh, rules),
                           in_shardings=(state_sharding, batch_sharding),
                           out_shardings=(state_sharding, replicated), donate_argnums=0),
        train_steps=jax.jit(train_steps,
                            in_shardings=(state_sharding, jax.tree.map(_stacked, batch_sharding)),
                            out_shardings=(state_sharding, replicated), donate_argnums=0),
        eval_step=jax.jit(_under_rules(make_eval_step(parts, task), mesh, rules),
                          in_shardings=(params_sharding, batch_sharding)),
    )
