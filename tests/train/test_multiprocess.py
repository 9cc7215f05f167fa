"""Two processes with 2 CPU devices each, joined by jax.distributed on localhost, train exactly
like one process with 4 devices."""

import subprocess

import pytest

from tests.train.helpers import TINY_CONFIG, free_port, losses

MESH = ["--config.mesh.data=2", "--config.mesh.fsdp=2"]


def test_two_processes_match_one(run_cli, tmp_path):
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", tmp_path / "one", *MESH, devices=4)

    port = free_port()
    processes = [
        run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", tmp_path / "two", *MESH,
                "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", 2,
                "--process-id", i, devices=2, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    for i, process in enumerate(processes):
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, f"process {i}:\n{err[-3000:]}"
        # Only process 0 prints metrics.
        assert ("step 10:" in out) == (i == 0)

    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(two) == list(range(1, 11))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-6), f"step {step}"
