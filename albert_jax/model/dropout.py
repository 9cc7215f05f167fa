"""Inverted dropout whose random bits come from a keyed hash of each element's index.

Drawing the mask used to cost more than the rest of a CPU train step at sequence 512: threefry
spends 20 rounds per 32-bit word, and attention dropout needs a word for every two of the
batch x heads x length x length probabilities. Dropout needs independent fair coins, not a
cipher, so each element's word is two rounds of a strong 32-bit integer hash (Wellons'
lowbias32) over the element's position in the array, keyed by 64 bits drawn from the layer's
JAX key. The position is a pair of iotas, so the mask:
- is a function of the key and the element's index only, identical under any sharding of the
  array (XLA partitions an iota with each shard's offset), and on every backend;
- fuses into the elementwise work around it (no random array is materialised), at about a
  tenth of threefry's cost per word.
`tests/model/test_dropout.py` checks the keep rate, and the independence of neighbouring
elements, of rows and of keys.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

# The name a remat policy keeps the masks by (`layers._REMAT_POLICIES`).
DROPOUT_MASK = "dropout_mask"

# An odd constant (2^32 / golden ratio): multiplying by it permutes the 32-bit words, so distinct
# rows enter the second round at distinct, well-spread offsets.
_GOLDEN = 0x9E3779B9


def _lowbias32(x: jax.Array) -> jax.Array:
    """A bijection of uint32 with near-ideal avalanche (each input bit flips each output bit
    with probability ~1/2): Chris Wellons' hash-prospector "lowbias32"."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _flat_iota(shape: tuple[int, ...], axes: range) -> jax.Array:
    """Each element's row-major index over `axes` of `shape` (0 where `axes` is empty)."""
    index = jnp.zeros(shape, jnp.uint32)
    stride = 1
    for axis in reversed(axes):
        index = index + jax.lax.broadcasted_iota(jnp.uint32, shape, axis) * jnp.uint32(stride)
        stride *= shape[axis]
    return index


def random_words(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Random uint32 words of `shape`: a keyed hash of each element's (row, column) position.

    The column is the index within the last two axes and the row the index over the others;
    within one row (or one column) no two elements share their hash input.
    """
    split = max(len(shape) - 2, 0)
    if math.prod(shape[split:]) > 2**32 or math.prod(shape[:split]) > 2**32:
        raise ValueError(f"dropout over shape {shape}: more than 2^32 elements in its last two "
                         "axes, or in the others")
    seed = jax.random.bits(key, (2,), jnp.uint32)
    column = _flat_iota(shape, range(split, len(shape)))
    row = _flat_iota(shape, range(split))
    return _lowbias32(_lowbias32(column ^ seed[0]) + (row ^ seed[1]) * jnp.uint32(_GOLDEN))


def dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout; without a key (eval mode) it is the identity.

    Each element is kept when a 16-bit random number falls below round((1 - rate) * 2**16), and
    scaled by the inverse of that exact keep probability (within 2**-17 of 1 - rate). Each word
    serves two elements: along the last axis, the first half takes the words' low halves and the
    rest their high halves.
    """
    if key is None or rate == 0.0:
        return x
    threshold = round((1.0 - rate) * 2**16)
    n = x.shape[-1]
    words = random_words(key, (*x.shape[:-1], (n + 1) // 2))
    keep = jnp.concatenate([(words & 0xFFFF) < threshold, (words >> 16) < threshold], axis=-1)
    keep = checkpoint_name(keep[..., :n], DROPOUT_MASK)
    return jnp.where(keep, x * (2**16 / threshold), 0).astype(x.dtype)
