"""Dropout: its keep rate, its scale, and that its coins behave as independent draws.

The mask comes from a hash of each element's position (`model.dropout`), so the tests look for
what a weak hash would leave: a biased rate, agreement between neighbours along any axis,
between the two halves of one word, between rows, between keys, and structure in the raw bits.
That a mesh changes no mask is tested on 8 devices (tests/train/test_meshes.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from albert_jax.model.dropout import dropout, random_words

# Two independent coins that each keep with probability 0.9 agree with probability 0.82.
AGREE = 0.9**2 + 0.1**2


def kept(shape, key=0, rate=0.1):
    return np.asarray(dropout(jnp.ones(shape, jnp.float32), rate, jax.random.key(key))) != 0


def test_dropout_keeps_one_minus_rate_and_rescales_by_the_exact_keep_probability():
    x = np.ones((64, 1001), np.float32)  # an odd last axis: its words' halves do not pair up evenly
    y = np.asarray(dropout(x, 0.1, jax.random.key(0)))
    threshold = round(0.9 * 2**16)
    np.testing.assert_allclose(y[y != 0], 2**16 / threshold, rtol=1e-6)
    assert abs((y != 0).mean() - 0.9) < 0.005  # four standard deviations over 64k elements
    for rate in (0.5, 0.01):
        assert abs(kept((64, 1000), rate=rate).mean() - (1 - rate)) < 4 * np.sqrt(rate * (1 - rate) / 64000)


def test_neighbours_along_every_axis_rows_word_halves_and_keys_are_independent():
    mask = kept((4, 8, 128, 128))  # attention probabilities' layout: batch, heads, queries, keys
    for axis in range(4):
        a, b = np.moveaxis(mask, axis, 0)[:-1], np.moveaxis(mask, axis, 0)[1:]
        assert abs((a == b).mean() - AGREE) < 0.006, axis
    # Element j and element j + 64 take the two halves of one random word.
    assert abs((mask[..., :64] == mask[..., 64:]).mean() - AGREE) < 0.006
    # Rows far apart, and the same positions under a sibling key, are not copies either.
    assert abs((mask[0] == mask[3]).mean() - AGREE) < 0.006
    parent = jax.random.key(0)
    first, second = (np.asarray(dropout(jnp.ones((4, 8, 128, 128)), 0.1, k)) != 0
                     for k in jax.random.split(parent))
    assert abs((first == second).mean() - AGREE) < 0.006


def test_the_raw_bits_are_uniform_and_uncorrelated():
    words = np.asarray(random_words(jax.random.key(3), (16, 64, 256)), np.uint64)
    bits = (words[..., None] >> np.arange(32, dtype=np.uint64)) & 1
    # Each of the 32 bits is set half the time (4 standard deviations over 262k words)...
    assert np.all(np.abs(bits.mean(axis=(0, 1, 2)) - 0.5) < 4 * 0.5 / np.sqrt(words.size))
    # ...and the 16-bit halves a dropout decision reads are uniform over 256 buckets (chi-square
    # with 255 degrees of freedom stays below 340 with probability 0.9997).
    for half in (words & 0xFFFF, words >> 16):
        counts = np.bincount((half >> 8).astype(np.int64).ravel(), minlength=256)
        expected = words.size / 256
        assert ((counts - expected) ** 2 / expected).sum() < 340
    # Consecutive words along the last axis and down the rows are uncorrelated.
    flat = words.astype(np.float64)
    for a, b in ((flat[..., :-1], flat[..., 1:]), (flat[:, :-1], flat[:, 1:]), (flat[:-1], flat[1:])):
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.01


def test_dropout_without_a_key_or_rate_is_the_identity():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(dropout(x, 0.1, None), x)
    np.testing.assert_array_equal(dropout(x, 0.0, jax.random.key(0)), x)


def test_an_array_too_large_for_the_hash_is_refused():
    with pytest.raises(ValueError, match="2\\^32"):
        jax.eval_shape(lambda: random_words(jax.random.key(0), (2**17, 2**16)))
