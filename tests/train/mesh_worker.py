"""Runs the tiny config on several meshes of simulated CPU devices; prints the results as JSON.

Run by test_meshes.py in a subprocess, because the device count is fixed when JAX starts:
    XLA_FLAGS=--xla_force_host_platform_device_count=8 python mesh_worker.py WORKDIR
"""

import json
import shutil
import sys
from pathlib import Path

import jax

from albert_jax.tasks.registry import resolve
from albert_jax.train import config as config_lib
from albert_jax.train import loop

sys.path.insert(0, str(Path(__file__).parent))
from helpers import TINY_CONFIG, losses

# Parameters whose shards the test checks, by path in the parameter dict.
PROBES = {
    "word_embeddings": ("albert", "embeddings", "word_embeddings", "embedding"),  # vocab, embed
    "query": ("albert", "encoder", "albert_layers", "attention", "query", "kernel"),  # layers, hidden, heads, kv
    "ffn": ("albert", "encoder", "albert_layers", "ffn", "kernel"),  # layers, hidden, mlp
    "ffn_bias": ("albert", "encoder", "albert_layers", "ffn", "bias"),  # layers, mlp
}


def run(workdir: Path, mesh: tuple[int, int, int], steps: int, *overrides: str) -> dict:
    data, fsdp, tensor = mesh
    config = config_lib.load_config(TINY_CONFIG, [
        f"--config.mesh.data={data}", f"--config.mesh.fsdp={fsdp}", f"--config.mesh.tensor={tensor}",
        f"--config.num_train_steps={steps}", *overrides])
    state = loop.train(resolve(config), str(workdir), devices=jax.devices()[: data * fsdp * tensor])

    def pick(tree, path):
        for key in path:
            tree = tree[key]
        return tree

    def shard_shape(array):
        return list(array.addressable_shards[0].data.shape)

    moments = state.opt_state[1]  # clip, moments, decay, trust ratio, learning rate
    return {
        "losses": losses(workdir),
        "shards": {name: shard_shape(pick(state.params, path)) for name, path in PROBES.items()},
        "moment_shards": {name: shard_shape(pick(moments.mu, path)) for name, path in PROBES.items()},
    }


def main(root: Path) -> None:
    results = {}
    for mesh in [(1, 1, 1), (8, 1, 1), (1, 8, 1), (1, 4, 2), (2, 2, 2)]:
        results["x".join(map(str, mesh))] = run(root / "x".join(map(str, mesh)), mesh, 10)
    # Dropout draws the same masks on every mesh (the keys split the same way whatever the
    # sharding), so runs with dropout agree too.
    dropout = ("--config.model.hidden_dropout_prob=0.1", "--config.model.attention_probs_dropout_prob=0.1")
    results["1x1x1_dropout"] = run(root / "1x1x1_dropout", (1, 1, 1), 10, *dropout)
    results["2x2x2_dropout"] = run(root / "2x2x2_dropout", (2, 2, 2), 10, *dropout)
    # Microbatches split the batch over the data-parallel devices too.
    results["2x2x2_accum2"] = run(root / "2x2x2_accum2", (2, 2, 2), 10, "--config.grad_accum_steps=2")
    # The 8-device run as if interrupted after its step-5 checkpoint continues on 2 devices.
    shutil.copytree(root / "2x2x2", root / "a_to_b")
    shutil.rmtree(root / "a_to_b" / "checkpoints" / "10")
    results["a_to_b"] = run(root / "a_to_b", (1, 1, 2), 10)
    print(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
