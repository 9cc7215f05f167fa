"""Attention per device (model.attention): the kernel "auto" picks, splash attention (in Pallas
interpret mode) against the XLA path, and the cuDNN arguments against the mask they stand for.
The cuDNN kernel itself needs an NVIDIA GPU: its test runs only there (`scripts/gpu_check.sh`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from albert_jax.errors import InputError
from albert_jax.model.attention import (
    AttentionMask,
    attention_weights,
    choose_implementation,
    cudnn_padding_lengths,
    fused_attention,
    segment_lengths_and_offsets,
)

B, S, N, D = 2, 128, 2, 8
PACKED = np.zeros((B, S), np.int32)
PACKED[0, :40], PACKED[0, 40:100], PACKED[1, :] = 1, 2, 1  # row 0: two examples, then padding
PADDED = np.zeros((B, S), np.int32)
PADDED[0, :70], PADDED[1, :] = 1, 1


def qkv(dtype=jnp.float32):
    return tuple(jax.random.normal(jax.random.key(i), (B, S, N, D), dtype) for i in range(3))


def xla_attention(q, k, v, mask):
    return jnp.einsum("bnqk,bknd->bqnd", attention_weights(q, k, mask, dtype=q.dtype), v)


def on(platform: str):
    """Traces as for a one-device mesh of `platform` (as an ahead-of-time compile does)."""
    device = jax.sharding.AbstractDevice(device_kind=f"test {platform}", num_cores=1, platform=platform)
    mesh = jax.sharding.AbstractMesh((1,), ("data",), abstract_device=device)
    return jax.sharding.use_abstract_mesh(mesh)


@pytest.mark.parametrize("platform, dtype, length, dropout, expected", [
    ("cpu", jnp.bfloat16, 128, False, "xla"),
    ("tpu", jnp.float32, 128, False, "splash"),
    ("tpu", jnp.float32, 96, False, "xla"),  # splash tiles are 128 long
    ("tpu", jnp.bfloat16, 512, True, "xla"),  # only xla has attention dropout
    ("gpu", jnp.bfloat16, 96, False, "cudnn"),
    ("gpu", jnp.float32, 128, False, "xla"),  # cuDNN flash attention is 16-bit only
])
def test_auto_picks_the_devices_kernel(platform, dtype, length, dropout, expected):
    query = jax.ShapeDtypeStruct((1, length, N, D), dtype)
    with on(platform):
        assert choose_implementation("auto", query, dropout) == expected


def test_a_named_kernel_that_cannot_run_is_an_input_error():
    query = jax.ShapeDtypeStruct((1, 96, N, D), jnp.bfloat16)
    with pytest.raises(InputError, match="'cudnn' needs an NVIDIA GPU; this backend is cpu"):
        choose_implementation("cudnn", query, False)
    with on("tpu"), pytest.raises(InputError, match="'splash' needs a sequence length that is a multiple of 128, got 96"):
        choose_implementation("splash", query, False)
    with on("gpu"), pytest.raises(InputError, match="'cudnn' has no attention dropout"):
        choose_implementation("cudnn", query, True)


def kernel_and_xla(kernel: str, mask: AttentionMask, rows, q, k, v):
    """(value, gradients) of a probe of the attention output at every real query (padding
    queries read nothing) through the fused `kernel`, then the same through the XLA path."""
    real = jnp.asarray(rows > 0)[:, :, None, None]
    probe = jax.random.normal(jax.random.key(9), q.shape, jnp.float32)

    def loss(attention):
        return lambda q, k, v: jnp.sum(jnp.where(real, attention(q, k, v, mask).astype(jnp.float32) * probe, 0.0))

    fused = jax.jit(jax.value_and_grad(loss(lambda *a: fused_attention(kernel, *a)), argnums=(0, 1, 2)))
    xla = jax.jit(jax.value_and_grad(loss(xla_attention), argnums=(0, 1, 2)))
    return fused(q, k, v), xla(q, k, v)


def test_splash_in_interpret_mode_equals_xla():
    """Outputs and gradients for a packed row with padding and a full row (splash reads unpacked
    rows the same way: segment ids 0 and 1)."""
    mask = AttentionMask(jnp.asarray(PACKED), packed=True)
    (splash_value, splash_grads), (xla_value, xla_grads) = kernel_and_xla("splash", mask, PACKED, *qkv())
    np.testing.assert_allclose(splash_value, xla_value, rtol=1e-5)
    for name, ours, theirs in zip("qkv", splash_grads, xla_grads):
        np.testing.assert_allclose(ours, theirs, atol=2e-5, err_msg=f"d{name}")


@pytest.mark.usefixtures("needs_gpu")
@pytest.mark.parametrize("rows, packed", [(PACKED, True), (PADDED, False)], ids=["packed", "padded"])
def test_cudnn_equals_xla(rows, packed):
    """cuDNN's flash attention against the XLA path in bfloat16 at a real head size: outputs and
    gradients, for packed rows (lengths and offsets) and padded ones."""
    mask = (AttentionMask(jnp.asarray(rows), packed=True, max_segments=3) if packed
            else AttentionMask.from_padding(jnp.asarray(rows)))
    q, k, v = (jax.random.normal(jax.random.key(i), (B, S, 4, 64), jnp.bfloat16) for i in range(3))
    (cudnn_value, cudnn_grads), (xla_value, xla_grads) = kernel_and_xla("cudnn", mask, rows, q, k, v)
    np.testing.assert_allclose(cudnn_value, xla_value, rtol=2e-2)
    for name, ours, theirs in zip("qkv", cudnn_grads, xla_grads):
        ours, theirs = np.asarray(ours, np.float32), np.asarray(theirs, np.float32)
        np.testing.assert_allclose(ours, theirs, atol=3e-2 * np.abs(theirs).max(), err_msg=f"d{name}")


def test_cudnn_segment_layout_describes_the_packed_mask():
    lengths, offsets = segment_lengths_and_offsets(jnp.asarray(PACKED), max_segments=3)
    np.testing.assert_array_equal(lengths, [[40, 60, -1], [128, -1, -1]])
    np.testing.assert_array_equal(offsets, [[0, 40, -1, -1], [0, -1, -1, -1]])
    # The mask the layout stands for, rebuilt from it, is the packed mask at every real query.
    index = np.arange(S)
    rebuilt = np.zeros((B, S, S), bool)
    for b in range(B):
        for length, start in zip(np.asarray(lengths[b]), np.asarray(offsets[b])):
            if length > 0:
                inside = (index >= start) & (index < start + length)
                rebuilt[b] |= inside[:, None] & inside[None, :]
    allowed = np.asarray(AttentionMask(jnp.asarray(PACKED), packed=True).allowed())[:, 0]
    real = PACKED > 0
    np.testing.assert_array_equal(rebuilt[real], allowed[real])


def test_cudnn_padding_lengths_give_the_padded_attention():
    """The sequence lengths the cuDNN path passes, run through jax's XLA implementation."""
    mask = AttentionMask.from_padding(jnp.asarray(PADDED))
    lengths = cudnn_padding_lengths(mask)
    np.testing.assert_array_equal(lengths, [70, 128])
    q, k, v = qkv()
    ours = xla_attention(q, k, v, mask)
    theirs = jax.nn.dot_product_attention(q, k, v, query_seq_lengths=lengths, key_value_seq_lengths=lengths,
                                          implementation="xla")
    real = PADDED > 0
    np.testing.assert_allclose(np.asarray(ours)[real], np.asarray(theirs)[real], atol=1e-6)
