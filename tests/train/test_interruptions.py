"""One run interrupted again and again (SIGKILL in the middle of an asynchronous checkpoint
write, Ctrl-C, Ctrl-C twice, SIGKILL between checkpoints): every rerun resumes from the newest
complete checkpoint, and the run ends with exactly the losses and parameters of an uninterrupted
one, bit for bit (CPU). Each stage runs the CLI in a subprocess, as a user would."""

import signal
import subprocess
from pathlib import Path

import jax
import numpy as np

from tests.train.helpers import TINY_CONFIG, checkpoint_params, complete_steps, losses

# Resumable changes of the reference run's config: the same program, more checkpoints.
ARGS = ["--config.checkpoint_every_steps=2"]


class Run:
    """`albert-jax pretrain` in a subprocess (in the fault worker with `faults`), its stdout and
    stderr read as one stream of lines."""

    def __init__(self, workdir: Path, run_cli, *faults):
        self.workdir = workdir
        self.newest_before = (complete_steps(workdir) or [None])[-1]
        self.process = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir, *ARGS, faults=faults,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


def test_interrupted_again_and_again_the_run_ends_as_if_never_stopped(finished_workdir, run_cli, tmp_path):
    workdir = tmp_path / "run"

    # SIGKILL while checkpoint 4 is written (2 is complete): 4 never counts as a checkpoint.
    run = Run(workdir, run_cli, "--stall-commits-from", 4)
    run.wait_for("stalling the commit of checkpoint 4")
    run.process.kill()
    assert run.finish() == -signal.SIGKILL
    assert complete_steps(workdir) == [2]
    assert (workdir / "checkpoints" / "4.orbax-checkpoint-tmp").is_dir()

    # Ctrl-C at step 5: saves there and says so in one line, exit 130 (as the shell's).
    run = Run(workdir, run_cli, "--signal", "SIGINT", "--at", 5)
    assert run.finish() == 130, run.output[-3000:]
    run.assert_resumed_from_the_newest_complete_checkpoint()
    assert run.last_line == ("albert-jax pretrain: interrupted: saved a checkpoint at step 5; "
                             "rerun the same command to resume")
    # The half-written 4 was cleared away, and 4 written again.
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["4", "5"]

    # Ctrl-C twice, the second while checkpoint 6 is being written: quits at once, without it.
    run = Run(workdir, run_cli, "--stall-commits-from", 6)
    run.wait_for("stalling the commit of checkpoint 6")
    run.process.send_signal(signal.SIGINT)
    run.wait_for("Ctrl-C again quits at once")
    run.process.send_signal(signal.SIGINT)
    assert run.finish(timeout=30) == 130, run.output[-3000:]
    run.assert_resumed_from_the_newest_complete_checkpoint()
    assert run.last_line == "interrupted again: quitting without saving"
    assert complete_steps(workdir) == [4, 5]

    # SIGKILL between checkpoints.
    run = Run(workdir, run_cli)
    run.wait_for("step 7: loss")
    run.process.kill()
    run.finish()
    run.assert_resumed_from_the_newest_complete_checkpoint()

    run = Run(workdir, run_cli)
    assert run.finish() == 0, run.output[-3000:]
    run.assert_resumed_from_the_newest_complete_checkpoint()
    assert losses(workdir) == losses(finished_workdir)
    jax.tree.map(np.testing.assert_array_equal, checkpoint_params(workdir, 10),
                 checkpoint_params(finished_workdir, 10))
