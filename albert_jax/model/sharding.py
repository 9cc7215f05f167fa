"""Logical axis names: the model names its axes, a rules table maps the names onto a device mesh.

Every parameter carries `logical_axes` metadata (one name, or None, per dimension). Activations are
constrained with `constrain` at a few points. The rules live with whoever owns the mesh (the
trainer's config); the model never names a mesh axis. Without a mesh or without rules nothing
here changes the computation.

Parameter axes: vocab, embed (E), hidden (H), mlp (intermediate), heads, kv (head dim), layers.
Activation axes: batch, length, act_embed, act_hidden, act_mlp, act_heads, act_kv, act_vocab.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx
from flax.core import spmd as flax_spmd
from jax.sharding import PartitionSpec

# One rule: a logical name and the mesh axis (or axes, or None) it may map to.
Rule = tuple[str, str | Sequence[str] | None]

LOGICAL_AXES = (
    "vocab", "embed", "hidden", "mlp", "heads", "kv", "layers",
    "batch", "length", "act_embed", "act_hidden", "act_mlp", "act_heads", "act_kv", "act_vocab",
)


def param_init(initializer, axes: tuple[str | None, ...]):
    """Wraps a parameter initializer so the created `nnx.Param` carries its logical axis names."""
    return nnx.with_metadata(initializer, logical_axes=axes)


def logical_to_mesh(
    axes: Sequence[str | None],
    rules: Sequence[Rule],
    shape: Sequence[int] | None = None,
    mesh_shape: dict[str, int] | None = None,
) -> PartitionSpec:
    """Maps logical axis names to a PartitionSpec through an ordered rules table.

    For each dimension the first rule for its name is taken whose mesh axes are not already used
    by another dimension of the same array and (when `shape` and `mesh_shape` are given) divide
    the dimension's size; if no rule fits, the dimension is replicated. A name that no rule
    mentions is an error, so a typo in a rules table cannot silently replicate a tensor.
    """
    known = {name for name, _ in rules}
    used: set[str] = set()
    spec = []
    for dim, name in enumerate(axes):
        if name is None:
            spec.append(None)
            continue
        if name not in known:
            raise ValueError(f"logical axis {name!r} has no rule; the rules name {sorted(known)}")
        chosen = None
        for rule_name, mesh_axes in rules:
            if rule_name != name or mesh_axes is None:
                continue
            mesh_axes = (mesh_axes,) if isinstance(mesh_axes, str) else tuple(mesh_axes)
            if used & set(mesh_axes):
                continue
            if shape is not None and mesh_shape is not None:
                size = math.prod(mesh_shape[a] for a in mesh_axes)
                if shape[dim] % size:
                    continue
            chosen = mesh_axes
            break
        if chosen is None:
            spec.append(None)
        else:
            used.update(chosen)
            spec.append(chosen[0] if len(chosen) == 1 else chosen)
    return PartitionSpec(*spec)


def current_rules() -> Sequence[Rule]:
    """The rules set with `flax.nnx.logical_axis_rules(...)`, or () outside such a block."""
    return tuple(flax_spmd.get_logical_axis_rules())


def constrain(x: jax.Array, axes: tuple[str | None, ...]) -> jax.Array:
    """Sharding constraint on an activation, when a mesh (`jax.set_mesh`) and rules are active."""
    rules = current_rules()
    mesh = jax.sharding.get_abstract_mesh()
    if not rules or mesh.empty:
        return x
    spec = logical_to_mesh(axes, rules, x.shape, dict(mesh.shape))
    return jax.lax.with_sharding_constraint(x, spec)


def partition_specs(state: nnx.State, rules: Sequence[Rule], mesh_shape: dict[str, int] | None = None):
    """PartitionSpecs for every variable in `state`, from its `logical_axes` metadata.

    Variables without names (RNG counters, scalars) are replicated.
    """

    def spec(variable):
        axes = variable.get_metadata().get("logical_axes")
        if axes is None:
            return PartitionSpec()
        return logical_to_mesh(axes, rules, variable.shape, mesh_shape)

    return jax.tree.map(spec, state, is_leaf=lambda x: isinstance(x, nnx.Variable))
