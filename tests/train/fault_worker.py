"""`albert-jax` with faults at moments a test knows:

    python fault_worker.py [--stall-commits-from STEP] [--signal SIGNAL --at STEP] ARGS...

runs `albert-jax ARGS...`, where
- every checkpoint from step STEP on is written in full, then, instead of being committed
  (renamed from `<step>.orbax-checkpoint-tmp` to `<step>`), the commit prints "stalling the
  commit of checkpoint <step>" on stdout and waits for the test's signal: a test can interrupt a
  run in the middle of an asynchronous checkpoint write;
- the process sends itself SIGNAL (e.g. SIGINT, SIGTERM) as step STEP ends, as a user or a
  cluster would, but at a step known in advance.
"""

import argparse
import os
import signal
import sys
import time

import albert_jax.cli


def stall_commits_from(step: int) -> None:
    from orbax.checkpoint._src.path import atomicity

    commit = atomicity.AtomicRenameTemporaryPath.finalize

    async def stalled(self):
        name = self.get_final().name
        if name.isdigit() and int(name) >= step:
            print(f"stalling the commit of checkpoint {name}", flush=True)
            time.sleep(600)  # noqa: ASYNC251 (blocks orbax's commit thread; training goes on until it waits)
        await commit(self)

    atomicity.AtomicRenameTemporaryPath.finalize = stalled


def signal_at(signum: int, step: int) -> None:
    from albert_jax.train import loop

    # Asked by every process after every execution: its count is the step count when each
    # execution runs one step (the default steps_per_execution).
    reached = loop._StopSignal.reached

    def reached_after_the_signal(self, current: int) -> bool:
        if current == step:
            os.kill(os.getpid(), signum)
        return reached(self, current)

    loop._StopSignal.reached = reached_after_the_signal


if __name__ == "__main__":
    parser = argparse.ArgumentParser(allow_abbrev=False)
    parser.add_argument("--stall-commits-from", type=int)
    parser.add_argument("--signal", type=lambda name: getattr(signal, name))
    parser.add_argument("--at", type=int)
    faults, args = parser.parse_known_args()
    # As albert_jax.cli.main does, but before importing orbax: a module that logs while it is
    # imported sets up the root logger, and main's set-up would then do nothing.
    albert_jax.cli.configure_logging()
    if faults.stall_commits_from is not None:
        stall_commits_from(faults.stall_commits_from)
    if faults.signal is not None:
        signal_at(faults.signal, faults.at)
    sys.exit(albert_jax.cli.main(args))
