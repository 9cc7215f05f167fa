"""Dropout: its keep rate, its scale, and the independence of the elements that share a random word."""

import jax
import numpy as np

from albert_jax.model.layers import dropout


def test_dropout_keeps_one_minus_rate_and_rescales_by_the_exact_keep_probability():
    x = np.ones((64, 1001), np.float32)  # an odd last axis: its words' halves do not pair up evenly
    y = np.asarray(dropout(x, 0.1, jax.random.key(0)))
    kept = y != 0
    threshold = round(0.9 * 2**16)
    np.testing.assert_allclose(y[kept], 2**16 / threshold, rtol=1e-6)
    assert abs(kept.mean() - 0.9) < 0.005  # four standard deviations over 64k elements
    # Element j and element j + 501 take the two halves of one random word: they must not agree
    # more often than two independent draws do (0.9^2 + 0.1^2 = 0.82).
    assert abs((kept[:, :500] == kept[:, 501:]).mean() - 0.82) < 0.01
    assert not np.array_equal(kept, np.asarray(dropout(x, 0.1, jax.random.key(1))) != 0)


def test_dropout_without_a_key_or_rate_is_the_identity():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(dropout(x, 0.1, None), x)
    np.testing.assert_array_equal(dropout(x, 0.0, jax.random.key(0)), x)
