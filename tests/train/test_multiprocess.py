"""Two processes with 2 CPU devices each, joined by jax.distributed on localhost, train exactly
like one process with 4 devices, through a preemption: SIGTERM to both makes both stop at the
same step with one checkpoint, and the rerun continues from it. Also with several steps per
execution, where the processes agree on the execution to stop after."""

import re
import subprocess
import sys

import pytest

from tests.train.helpers import TINY_CONFIG, cli_env, complete_steps, free_port, losses

MESH = ["--config.mesh.data=2", "--config.mesh.fsdp=2"]


@pytest.fixture(scope="module")
def one(tmp_path_factory, compile_cache):
    """The reference: one process with 4 devices."""
    workdir = tmp_path_factory.mktemp("one")
    subprocess.run([sys.executable, "-m", "albert_jax.cli", "pretrain", "--config", TINY_CONFIG,
                    "--workdir", str(workdir), *MESH], env=cli_env(4, compile_cache), check=True,
                   capture_output=True, timeout=600)
    return workdir


def preempted_then_resumed(run_cli, workdir, *args) -> tuple[int, list[str]]:
    """Runs two processes, SIGTERM to each after its second execution, then reruns them to the
    end. Returns the step they stopped at, and the rerun's stdout of each."""

    def start_two(*faults):
        port = free_port()
        return [run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir, *MESH, *args,
                        "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", 2,
                        "--process-id", i, devices=2, faults=faults, stdout=subprocess.PIPE,
                        stderr=open(workdir.parent / f"{workdir.name}_stderr_{i}", "w"), text=True)
                for i in range(2)]

    def stderr(i) -> str:
        return (workdir.parent / f"{workdir.name}_stderr_{i}").read_text()

    def finish(processes) -> list[str]:
        outputs = [process.communicate(timeout=600)[0] for process in processes]
        for i, process in enumerate(processes):
            assert process.returncode == 0, f"process {i}:\n{stderr(i)[-3000:]}"
        return outputs

    finish(start_two("--signal", "SIGTERM", "--at", 2))
    stops = [re.findall(r"SIGTERM: saved a checkpoint at step (\d+)", stderr(i)) for i in range(2)]
    assert stops[0] == stops[1] and len(stops[0]) == 1, stops
    stopped = int(stops[0][0])
    assert complete_steps(workdir)[-1] == stopped

    outputs = finish(start_two())
    assert f"resuming from {workdir / 'checkpoints'}/{stopped}" in stderr(0)
    return stopped, outputs


def test_two_processes_match_one_through_a_preemption(run_cli, tmp_path, one):
    stopped, outputs = preempted_then_resumed(run_cli, tmp_path / "two")
    assert stopped < 10
    # Only process 0 prints metrics.
    assert ["step 10:" in out for out in outputs] == [True, False]
    expected, two = losses(one), losses(tmp_path / "two")
    assert sorted(two) == list(range(1, 11))
    for step in expected:
        assert two[step] == pytest.approx(expected[step], rel=1e-6), f"step {step}"


def test_two_processes_with_two_steps_per_execution(run_cli, tmp_path):
    # 20 steps: the processes agree on an execution to stop after a few executions after the
    # signal; 10 steps in executions of 2 can end first.
    args = ["--config.steps_per_execution=2", "--config.log_every_steps=2", "--config.num_train_steps=20"]
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", tmp_path / "one", *MESH, *args, devices=4)
    stopped, _ = preempted_then_resumed(run_cli, tmp_path / "two", *args)
    assert stopped < 20
    expected, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert sorted(two) == sorted(expected) == list(range(2, 21, 2))
    # After a stop at an odd step, the rerun's first log averages only the step it made.
    partial = stopped + 1 if stopped % 2 else None
    for step in expected:
        if step != partial:
            assert two[step] == pytest.approx(expected[step], rel=1e-6), f"step {step}"
