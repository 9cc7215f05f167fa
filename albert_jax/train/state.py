"""The train state and where it lives: created already sharded, never whole on one host.

The state holds only what training changes: the step, the parameters (as the pure dict of
`nnx.state(model, nnx.Param)`, the layout checkpoints and `from_pretrained` share) and the
optimizer state. The model's structure (`graphdef`) is static and rebuilt from the config; its
RNG stream is never used, because every step passes its own dropout key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from albert_jax.model import AlbertConfig
from albert_jax.model.sharding import Rule, partition_specs

Params = dict[str, Any]


@struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer updates done
    params: Params
    opt_state: optax.OptState


@dataclasses.dataclass(frozen=True)
class ModelParts:
    """An abstract model, split: what a jitted function needs to rebuild it from parameters."""

    config: AlbertConfig
    model_class: type[nnx.Module]  # the task's model, e.g. AlbertForPreTraining
    graphdef: nnx.GraphDef  # dropout on (train mode)
    eval_graphdef: nnx.GraphDef  # dropout off
    param_state: nnx.State  # abstract parameters with their `logical_axes` metadata
    rest: nnx.State  # abstract non-parameter variables (the unused RNG stream)

    @classmethod
    def create(cls, config: AlbertConfig, model_class: type[nnx.Module]) -> ModelParts:
        model = nnx.eval_shape(lambda: model_class(config, rngs=nnx.Rngs(0)))
        model.train()
        graphdef, param_state, rest = nnx.split(model, nnx.Param, ...)
        model.eval()
        eval_graphdef = nnx.split(model, nnx.Param, ...)[0]
        return cls(config, model_class, graphdef, eval_graphdef, param_state, rest)

    def merge(self, params: Params, *, train: bool) -> nnx.Module:
        """The model over `params`. Its RNG variables stay abstract: callers pass dropout keys."""
        return nnx.merge(self.graphdef if train else self.eval_graphdef, params, self.rest)

    def abstract_params(self) -> Params:
        return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                            nnx.to_pure_dict(self.param_state))


def init_params(parts: ModelParts, seed: int) -> Params:
    """Freshly initialised parameters (call under jit: each device computes only its shards)."""
    model = parts.model_class(parts.config, rngs=nnx.Rngs(seed))
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


# -- shardings ------------------------------------------------------------------------------------


def param_shardings(parts: ModelParts, mesh: Mesh, rules: Sequence[Rule]) -> Params:
    """NamedShardings of the parameters, from their logical axes and the rules table."""
    specs = nnx.to_pure_dict(partition_specs(parts.param_state, rules, dict(mesh.shape)))
    return jax.tree.map(lambda spec: NamedSharding(mesh, spec), specs,
                        is_leaf=lambda x: isinstance(x, PartitionSpec))


def state_shardings(abstract_state: TrainState, params_sharding: Params, mesh: Mesh) -> TrainState:
    """Shardings of the whole state: any optimizer-state subtree shaped like the parameters
    (Adam's moments) is sharded like them; counters and other scalars are replicated."""
    treedef = jax.tree.structure(abstract_state.params)
    replicated = NamedSharding(mesh, PartitionSpec())

    def like_params(subtree):
        return jax.tree.structure(subtree) == treedef

    opt_sharding = jax.tree.map(
        lambda sub: params_sharding if like_params(sub) else replicated,
        abstract_state.opt_state, is_leaf=like_params)
    return TrainState(step=replicated, params=params_sharding, opt_state=opt_sharding)


def fresh_state(params: Params, optimizer: optax.GradientTransformation) -> TrainState:
    """Step 0: the given parameters and a new optimizer state."""
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params))


def abstract_train_state(parts: ModelParts, optimizer: optax.GradientTransformation) -> TrainState:
    """Shapes and dtypes of the state, computed without allocating anything."""
    return jax.eval_shape(lambda p: fresh_state(p, optimizer), parts.abstract_params())


def with_shardings(abstract: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs carrying shardings: the input of `lower` and of a sharded restore."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                        abstract, shardings)


def make_init_fn(parts: ModelParts, optimizer: optax.GradientTransformation, seed: int,
                 shardings: TrainState) -> Callable[[], TrainState]:
    """A jitted function creating the state directly in its shardings (no host copy)."""

    return jax.jit(lambda: fresh_state(init_params(parts, seed), optimizer),
                   out_shardings=shardings)


def make_state_from_params(optimizer: optax.GradientTransformation,
                           shardings: TrainState) -> Callable[[Params], TrainState]:
    """A jitted function wrapping given (e.g. pretrained) parameters into a step-0 state."""
    return jax.jit(lambda params: fresh_state(params, optimizer), in_shardings=(shardings.params,),
                   out_shardings=shardings)
