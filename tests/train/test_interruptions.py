"""One run interrupted again and again (SIGKILL in the middle of an asynchronous checkpoint
write, Ctrl-C, Ctrl-C twice, SIGKILL between checkpoints): every rerun resumes from the newest
complete checkpoint, and the run ends with exactly the losses and parameters of an uninterrupted
one, bit for bit (CPU). Each stage runs the CLI in a subprocess, as a user would."""

import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from tests.train.helpers import TINY_CONFIG, checkpoint_params, cli_env, complete_steps, losses

FAULT_WORKER = Path(__file__).with_name("fault_worker.py")
# Resumable changes of the reference run's config: the same program, more checkpoints.
ARGS = ["--config.checkpoint_every_steps=2"]


class Run:
    """`albert-jax pretrain` in a subprocess, its stdout and stderr read as one stream of lines;
    with `stall_from`, in the fault worker, whose commits of checkpoints from that step hang."""

    def __init__(self, workdir: Path, compile_cache: str, stall_from: int | None = None):
        self.workdir = workdir
        self.newest_before = (complete_steps(workdir) or [None])[-1]
        program = ["-m", "albert_jax.cli"] if stall_from is None else [str(FAULT_WORKER), str(stall_from)]
        env = {**cli_env(1, compile_cache), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, *program, "pretrain", "--config", TINY_CONFIG, "--workdir", str(workdir), *ARGS],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []

    def wait_for(self, text: str) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"the run ended without printing {text!r}:\n{self.output[-3000:]}")

    def finish(self, timeout: float = 300) -> int:
        try:
            rest, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
            raise AssertionError(f"the run did not end within {timeout}s:\n{self.output + rest}"[-3000:]) from None
        self.lines.append(rest)
        return self.process.returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def last_line(self) -> str:
        return self.output.strip().splitlines()[-1]

    def assert_resumed_from_the_newest_complete_checkpoint(self) -> None:
        assert f"resuming from {self.workdir / 'checkpoints'}/{self.newest_before}" in self.output, \
            self.output[-3000:]


def test_interrupted_again_and_again_the_run_ends_as_if_never_stopped(
        finished_workdir, compile_cache, tmp_path):
    workdir = tmp_path / "run"

    # SIGKILL while checkpoint 4 is written (2 is complete): 4 never counts as a checkpoint.
    run = Run(workdir, compile_cache, stall_from=4)
    run.wait_for("stalling the commit of checkpoint 4")
    run.process.kill()
    assert run.finish() == -signal.SIGKILL
    assert complete_steps(workdir) == [2]
    assert (workdir / "checkpoints" / "4.orbax-checkpoint-tmp").is_dir()

    # Ctrl-C: saves where it stops and says so in one line, exit 130 (as the shell's).
    run = Run(workdir, compile_cache)
    run.wait_for("step 5: loss")
    run.process.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.output[-3000:]
    run.assert_resumed_from_the_newest_complete_checkpoint()
    stopped = complete_steps(workdir)[-1]
    assert 5 <= stopped < 10
    assert run.last_line == (f"albert-jax pretrain: interrupted: saved a checkpoint at step {stopped}; "
                             "rerun the same command to resume")
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == \
        [str(step) for step in complete_steps(workdir)], "the half-written 4 was cleared away"

    # Ctrl-C twice, the second while a checkpoint is being written: quits at once, without it.
    complete = complete_steps(workdir)
    run = Run(workdir, compile_cache, stall_from=stopped + 1)
    run.wait_for("stalling the commit of checkpoint")
    run.process.send_signal(signal.SIGINT)
    run.wait_for("Ctrl-C again quits at once")
    run.process.send_signal(signal.SIGINT)
    assert run.finish(timeout=30) == 130, run.output[-3000:]
    run.assert_resumed_from_the_newest_complete_checkpoint()
    assert run.last_line == "interrupted again: quitting without saving"
    assert complete_steps(workdir) == complete

    # SIGKILL between checkpoints.
    run = Run(workdir, compile_cache)
    run.wait_for(f"step {complete[-1] + 1}: loss")
    run.process.kill()
    run.finish()
    run.assert_resumed_from_the_newest_complete_checkpoint()

    run = Run(workdir, compile_cache)
    assert run.finish() == 0, run.output[-3000:]
    run.assert_resumed_from_the_newest_complete_checkpoint()
    assert losses(workdir) == losses(finished_workdir)
    jax.tree.map(np.testing.assert_array_equal, checkpoint_params(workdir, 10),
                 checkpoint_params(finished_workdir, 10))
