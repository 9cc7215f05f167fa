"""Meshes of 8 simulated CPU devices give the losses of one device, with parameters sharded as
the rules say; a checkpoint from one mesh continues on another with a different device count."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.train.helpers import cli_env

# Float32 sums in another order and across devices: losses agree to ~1e-6 relative after 10 steps.
RTOL = 1e-5

# Expected per-device shard shapes under the default rules for the tiny model (vocab 256, E 16,
# H 32, 4 heads of 8, mlp 64, one stacked layer): vocab/heads/mlp split over tensor, embed and
# hidden over fsdp; the data axis holds full copies.
EXPECTED_SHARDS = {
    "1x1x1": {"word_embeddings": [256, 16], "query": [1, 32, 4, 8], "ffn": [1, 32, 64], "ffn_bias": [1, 64]},
    "8x1x1": {"word_embeddings": [256, 16], "query": [1, 32, 4, 8], "ffn": [1, 32, 64], "ffn_bias": [1, 64]},
    "1x8x1": {"word_embeddings": [256, 2], "query": [1, 4, 4, 8], "ffn": [1, 4, 64], "ffn_bias": [1, 64]},
    "1x4x2": {"word_embeddings": [128, 4], "query": [1, 8, 2, 8], "ffn": [1, 8, 32], "ffn_bias": [1, 32]},
    "2x2x2": {"word_embeddings": [128, 8], "query": [1, 16, 2, 8], "ffn": [1, 16, 32], "ffn_bias": [1, 32]},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory, compile_cache):
    root = tmp_path_factory.mktemp("meshes")
    worker = Path(__file__).with_name("mesh_worker.py")
    done = subprocess.run([sys.executable, str(worker), str(root)], env=cli_env(8, compile_cache),
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mesh", ["8x1x1", "1x8x1", "1x4x2", "2x2x2", "2x2x2_accum2"])
def test_mesh_matches_one_device(results, mesh):
    reference, losses = results["1x1x1"]["losses"], results[mesh]["losses"]
    assert sorted(losses, key=int) == [str(step) for step in range(1, 11)]
    assert losses["1"] != losses["10"], "the loss should change while training"
    for step, loss in reference.items():
        assert loss == pytest.approx(losses[step], rel=RTOL), f"step {step}"


@pytest.mark.parametrize("mesh", sorted(EXPECTED_SHARDS))
def test_parameters_and_optimizer_state_are_sharded_by_the_rules(results, mesh):
    assert results[mesh]["shards"] == EXPECTED_SHARDS[mesh]
    assert results[mesh]["moment_shards"] == EXPECTED_SHARDS[mesh]


def test_checkpoint_continues_on_a_mesh_with_another_device_count(results):
    reference, losses = results["1x1x1"]["losses"], results["a_to_b"]["losses"]
    assert sorted(losses, key=int) == [str(step) for step in range(1, 11)]
    for step in map(str, range(6, 11)):
        assert losses[step] == pytest.approx(reference[step], rel=RTOL), f"step {step}"
    assert results["a_to_b"]["shards"]["ffn"] == [1, 32, 32]  # 2x2x2 split it [1, 16, 32]


def test_dropout_masks_do_not_depend_on_the_mesh(results):
    reference, losses = results["1x1x1_dropout"]["losses"], results["2x2x2_dropout"]["losses"]
    assert reference != results["1x1x1"]["losses"], "dropout should change the losses"
    for step, loss in reference.items():
        assert loss == pytest.approx(losses[step], rel=RTOL), f"step {step}"
