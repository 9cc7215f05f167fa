"""Scaled dot-product attention: the mask, and the kernel for each kind of device.

`attention_implementation` (see `AlbertConfig`) picks the kernel:
- "xla": explicit softmax attention in float32; runs everywhere, the only one with attention
  dropout.
- "cudnn": cuDNN's fused flash attention (NVIDIA GPUs, bfloat16/float16). Padding goes in as
  sequence lengths, never as a boolean mask (a mask becomes a bias whose gradient jax 0.10 also
  computes); packed rows go in as per-example lengths and offsets.
- "splash": the Pallas splash-attention kernel for TPUs, with segment ids; rows a multiple of
  128 long. Off TPU it runs in Pallas's interpret mode: slow, for checking it against "xla".
- "auto" (default): cudnn on a GPU, splash on a TPU, wherever the kernel applies (no attention
  dropout in training; cuDNN: 16-bit compute; splash: length a multiple of 128), else xla.

The device is the one the program is compiled for: the mesh's devices under a mesh (an
ahead-of-time compile for a TPU slice runs on a CPU), else JAX's default backend.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import struct

from albert_jax.errors import InputError
from albert_jax.model.sharding import current_rules, logical_to_mesh

# Splash attention's tiles must be multiples of the TPU's 128 lanes.
_SPLASH_TILE = 128


@struct.dataclass
class AttentionMask:
    """Which keys each query may attend to.

    `segment_ids` [batch, length] numbers each token's example within its row (0: padding).
    Unpacked rows (`packed` False) hold one example, so segment ids are the 0/1 padding mask and
    every query attends to all real keys, as in Hugging Face. Packed rows hold several examples:
    a token attends only to the real keys of its own example (a padding query, whose output
    nothing reads, to all real keys, so that no row of the softmax is empty). `max_segments`
    bounds the examples per row (cuDNN's packed layout needs it; None: the row length).
    """

    segment_ids: jax.Array
    packed: bool = struct.field(pytree_node=False, default=False)
    max_segments: int | None = struct.field(pytree_node=False, default=None)

    @classmethod
    def from_padding(cls, attention_mask: jax.Array) -> AttentionMask:
        return cls(attention_mask.astype(jnp.int32), packed=False)

    def allowed(self) -> jax.Array:
        """[batch, 1, length or 1, length] booleans, broadcastable against [batch, heads, q, k]."""
        real_keys = self.segment_ids[:, None, None, :] > 0
        if not self.packed:
            return real_keys
        queries = self.segment_ids[:, None, :, None]
        return real_keys & ((queries == self.segment_ids[:, None, None, :]) | (queries == 0))


def attention_weights(query, key, mask: AttentionMask, *, dtype) -> jax.Array:
    """Softmax attention probabilities [batch, heads, q, k], computed in float32."""
    scores = jnp.einsum("bqnd,bknd->bnqk", query, key, preferred_element_type=jnp.float32)
    scores = scores / math.sqrt(query.shape[-1])
    scores = jnp.where(mask.allowed(), scores, jnp.finfo(jnp.float32).min)
    return jax.nn.softmax(scores, axis=-1).astype(dtype)


def target_platform() -> str:
    """"cpu", "gpu" or "tpu": the platform of the mesh being traced for, else the default."""
    device = getattr(jax.sharding.get_abstract_mesh(), "abstract_device", None)
    return device.platform if device is not None else jax.default_backend()


def choose_implementation(requested: str, query: jax.Array, dropout_on: bool) -> str:
    """The kernel for `requested` ("auto" or a kernel's name), queries [batch, length, heads,
    head_dim] and whether attention dropout is applied; raises InputError for a named kernel
    that cannot run this attention."""
    platform, length = target_platform(), query.shape[1]
    if requested == "auto":
        if dropout_on:
            return "xla"
        if platform == "gpu" and query.dtype in (jnp.bfloat16, jnp.float16):
            return "cudnn"
        if platform == "tpu" and length % _SPLASH_TILE == 0:
            return "splash"
        return "xla"
    if requested != "xla" and dropout_on:
        raise InputError(f"attention_implementation={requested!r} has no attention dropout; set "
                         "attention_probs_dropout_prob=0, or use 'xla' or 'auto'")
    if requested == "cudnn" and platform != "gpu":
        raise InputError(f"attention_implementation='cudnn' needs an NVIDIA GPU; this backend is "
                         f"{platform} (use 'xla' or 'auto')")
    if requested == "splash" and length % _SPLASH_TILE:
        raise InputError(f"attention_implementation='splash' needs a sequence length that is a "
                         f"multiple of {_SPLASH_TILE}, got {length} (use 'xla' or 'auto')")
    return requested


def fused_attention(implementation: str, query, key, value, mask: AttentionMask) -> jax.Array:
    """Attention context [batch, length, heads, head_dim] from a fused kernel: "cudnn" or "splash"."""
    if implementation == "cudnn":
        return _cudnn(query, key, value, mask)
    return _splash(query, key, value, mask.segment_ids, interpret=target_platform() != "tpu")


# -- cuDNN ------------------------------------------------------------------------------------


def segment_lengths_and_offsets(segment_ids: jax.Array, max_segments: int) -> tuple[jax.Array, jax.Array]:
    """cuDNN's packed layout: each row's segment lengths [batch, M] and start offsets
    [batch, M + 1], -1 where a row has fewer segments. Segments must be runs numbered 1, 2, ...
    from the row's start (as `data.packing` makes them)."""
    numbers = jnp.arange(1, max_segments + 1, dtype=jnp.int32)
    members = segment_ids[:, None, :] == numbers[None, :, None]  # [batch, M, length]
    lengths = jnp.sum(members, axis=-1, dtype=jnp.int32)
    starts = jnp.argmax(members, axis=-1).astype(jnp.int32)
    present = lengths > 0
    lengths = jnp.where(present, lengths, -1)
    offsets = jnp.concatenate([jnp.where(present, starts, -1),
                               jnp.full_like(starts[:, :1], -1)], axis=1)
    return lengths, offsets


def cudnn_padding_lengths(mask: AttentionMask) -> jax.Array:
    """[batch] real tokens per unpacked row: cuDNN's padding, which must be at the row's end."""
    return jnp.sum(mask.segment_ids > 0, axis=1, dtype=jnp.int32)


def _cudnn(query, key, value, mask: AttentionMask) -> jax.Array:
    if not mask.packed:
        lengths = cudnn_padding_lengths(mask)
        return jax.nn.dot_product_attention(query, key, value, query_seq_lengths=lengths,
                                            key_value_seq_lengths=lengths, implementation="cudnn")
    # jax.nn.dot_product_attention has no segments; its cuDNN backend does (lengths + offsets).
    from jax._src.cudnn.fused_attention_stablehlo import MaskType
    from jax._src.cudnn.fused_attention_stablehlo import dot_product_attention as cudnn_attention

    lengths, offsets = segment_lengths_and_offsets(mask.segment_ids, mask.max_segments or query.shape[1])
    return cudnn_attention(query, key, value, q_seqlen=lengths, kv_seqlen=lengths, q_offsets=offsets,
                           kv_offsets=offsets, scale=1 / math.sqrt(query.shape[-1]),
                           mask_type=MaskType.PADDING)


# -- splash (TPU) -----------------------------------------------------------------------------


def _splash_kernel(heads: int, length: int, interpret: bool):
    from jax.experimental.pallas.ops.tpu import splash_attention as splash

    block = next(b for b in (512, 256, _SPLASH_TILE) if length % b == 0)
    blocks = splash.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                               block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                               block_q_dq=block, block_kv_dq=block)
    # Every query may see every key; the segment ids alone restrict attention. Made per trace
    # (not cached): the kernel holds arrays, which inside a trace are that trace's values.
    full = splash.MultiHeadMask([splash.FullMask((length, length))] * heads)
    return splash.make_splash_mha(full, block_sizes=blocks, head_shards=1, q_seq_shards=1,
                                  interpret=interpret)


def _splash_rows(query, key, value, segment_ids, *, interpret: bool) -> jax.Array:
    """Splash over rows held whole on this device: [batch, length, heads, head_dim]."""
    from jax.experimental.pallas.ops.tpu import splash_attention as splash

    kernel = _splash_kernel(query.shape[2], query.shape[1], interpret)
    # The kernel takes [heads, length, head_dim] per row and does not scale the queries.
    query = query / jnp.asarray(math.sqrt(query.shape[-1]), query.dtype)

    def row(q, k, v, ids):
        return kernel(q, k, v, segment_ids=splash.SegmentIds(q=ids, kv=ids))

    heads_first = functools.partial(jnp.swapaxes, axis1=1, axis2=2)
    out = jax.vmap(row)(heads_first(query), heads_first(key), heads_first(value), segment_ids)
    return heads_first(out)


def _splash(query, key, value, segment_ids, *, interpret: bool) -> jax.Array:
    """Splash attention; under a mesh, run per device on its rows and heads (a Pallas kernel has
    no sharding rule, so without shard_map XLA would gather every row onto every device)."""
    mesh, rules = jax.sharding.get_abstract_mesh(), current_rules()
    rows = functools.partial(_splash_rows, interpret=interpret)
    if mesh.empty or not rules:
        return rows(query, key, value, segment_ids)
    # Rows and heads as the activations are sharded; every device keeps whole sequences.
    spec = logical_to_mesh(("batch", None, "act_heads", None), rules, query.shape, dict(mesh.shape))
    ids_spec = jax.sharding.PartitionSpec(spec[0], None)
    return jax.shard_map(rows, mesh=mesh, in_specs=(spec, spec, spec, ids_spec), out_specs=spec,
                         check_vma=False)(query, key, value, segment_ids)
