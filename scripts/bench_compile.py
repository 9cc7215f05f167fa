"""Compile time of one forward+backward pass at 12 and at 48 layers, same width.

albert_jax runs the shared layers as one scanned loop, so its program (and compile time) should
barely grow with depth; transformers' FlaxAlbert (4.x) unrolls every layer application. Both are
measured in this process, the same way: jit(grad(loss)).lower(...).compile() on fresh caches.

    python scripts/bench_compile.py                 # base width (H=768), batch 8 x 128
    python scripts/bench_compile.py --layers 12 24 48 --skip-hf
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from albert_jax import AlbertConfig, AlbertForPreTraining


def _batch(config: AlbertConfig, batch: int, length: int, predictions: int):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, config.vocab_size, size=(batch, length)).astype(np.int32)
    positions = np.sort(rng.choice(length, size=(batch, predictions)), axis=1).astype(np.int32)
    return ids, np.ones_like(ids), np.zeros_like(ids), positions


def _mlm_sop_loss(prediction_logits, sop_logits):
    # A stand-in for the pretraining loss: what matters here is that every parameter gets a gradient.
    return jnp.mean(jax.nn.logsumexp(prediction_logits, axis=-1)) + jnp.mean(jax.nn.logsumexp(sop_logits, axis=-1))


def _time_compile(fn, *args) -> tuple[float, float]:
    jax.clear_caches()
    start = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    traced = time.perf_counter()
    lowered.compile()
    done = time.perf_counter()
    return traced - start, done - traced


def ours(config: AlbertConfig, batch) -> tuple[float, float]:
    ids, mask, types, positions = batch
    model = nnx.eval_shape(lambda: AlbertForPreTraining(config, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(params, key):
        out = nnx.merge(graphdef, params, rest)(ids, mask, types, masked_lm_positions=positions, rngs=key)
        return _mlm_sop_loss(out.prediction_logits, out.sop_logits)

    return _time_compile(jax.grad(loss), params, jax.random.key(0))


def flax_albert(config: AlbertConfig, batch) -> tuple[float, float]:
    import transformers

    ids, mask, types, _ = batch
    hf_config = transformers.AlbertConfig(**{k: v for k, v in config.to_hf_dict().items()
                                             if k not in ("dtype", "param_dtype")})
    model = transformers.FlaxAlbertForPreTraining(hf_config, input_shape=ids.shape, _do_init=False)
    params = jax.eval_shape(lambda key: model.init_weights(key, ids.shape), jax.random.key(0))

    def loss(params, key):
        out = model(ids, mask, types, params=params, dropout_rng=key, train=True)
        return _mlm_sop_loss(out.prediction_logits, out.sop_logits)

    return _time_compile(jax.grad(loss), params, jax.random.key(0))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, nargs="+", default=[12, 48])
    parser.add_argument("--preset", default="base-v1", help="width to use (v1: dropout on, as in training)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--skip-hf", action="store_true", help="measure albert_jax only")
    args = parser.parse_args()

    print(f"device: {jax.devices()[0].device_kind} x{jax.device_count()}, jax {jax.__version__}")
    print(f"preset {args.preset}, batch {args.batch} x {args.length}; seconds for jit(grad(loss)): "
          "trace+lower, then XLA compile")
    print(f"{'implementation':<28}{'layers':>7}{'trace+lower':>13}{'compile':>10}{'total':>9}")
    rows = [("albert_jax (scanned)", ours)] + ([] if args.skip_hf else [("transformers FlaxAlbert", flax_albert)])
    for name, fn in rows:
        totals = {}
        for layers in args.layers:
            config = AlbertConfig.preset(args.preset, num_hidden_layers=layers)
            trace, compile_ = fn(config, _batch(config, args.batch, args.length, predictions=20))
            totals[layers] = trace + compile_
            print(f"{name:<28}{layers:>7}{trace:>13.2f}{compile_:>10.2f}{trace + compile_:>9.2f}", flush=True)
        low, high = min(args.layers), max(args.layers)
        print(f"{name:<28} {high}/{low} layers: {totals[high] / totals[low]:.2f}x")


if __name__ == "__main__":
    main()
