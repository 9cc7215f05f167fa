"""Two processes with 2 CPU devices each, joined by jax.distributed on localhost, train exactly
like one process with 4 devices, through a preemption: SIGTERM to both makes both stop at the
same step with one checkpoint, and the rerun continues from it."""

import re
import subprocess

import pytest

from tests.train.helpers import TINY_CONFIG, complete_steps, free_port, losses

MESH = ["--config.mesh.data=2", "--config.mesh.fsdp=2"]


def test_two_processes_match_one_through_a_preemption(run_cli, tmp_path):
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", tmp_path / "one", *MESH, devices=4)

    def start_two(*faults):
        port = free_port()
        return [run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", tmp_path / "two", *MESH,
                        "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", 2,
                        "--process-id", i, devices=2, faults=faults, stdout=subprocess.PIPE,
                        stderr=open(tmp_path / f"stderr_{i}", "w"), text=True)
                for i in range(2)]

    def finish(processes) -> list[str]:
        outputs = [process.communicate(timeout=600)[0] for process in processes]
        for i, process in enumerate(processes):
            assert process.returncode == 0, f"process {i}:\n{(tmp_path / f'stderr_{i}').read_text()[-3000:]}"
        return outputs

    finish(start_two("--signal", "SIGTERM", "--at", 2))  # each process, as step 2 ends
    stops = [re.findall(r"SIGTERM: saved a checkpoint at step (\d+)", (tmp_path / f"stderr_{i}").read_text())
             for i in range(2)]
    assert stops[0] == stops[1] and len(stops[0]) == 1, stops
    stopped = int(stops[0][0])
    assert stopped < 10 and complete_steps(tmp_path / "two")[-1] == stopped

    outputs = finish(start_two())
    assert f"resuming from {tmp_path / 'two' / 'checkpoints'}/{stopped}" in (tmp_path / "stderr_0").read_text()
    # Only process 0 prints metrics.
    assert ["step 10:" in out for out in outputs] == [True, False]
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(two) == list(range(1, 11))
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-6), f"step {step}"
