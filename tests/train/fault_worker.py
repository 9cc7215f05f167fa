"""`albert-jax` whose checkpoint commits hang, so that a test can interrupt a run in the middle
of an asynchronous checkpoint write, at a moment it knows:

    python fault_worker.py STEP pretrain ARGS...

runs `albert-jax pretrain ARGS...`; every checkpoint from step STEP on is written in full, then,
instead of being committed (renamed from `<step>.orbax-checkpoint-tmp` to `<step>`), prints
"stalling the commit of checkpoint <step>" on stdout and waits for the test's signal.
"""

import logging
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
            time.sleep(600)  # in orbax's commit thread; training goes on until it waits for it
        await commit(self)

    atomicity.AtomicRenameTemporaryPath.finalize = stalled


if __name__ == "__main__":
    # As albert_jax.cli.main does, but before importing orbax: a module that logs while it is
    # imported sets up the root logger, and main's set-up would then do nothing.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stall_commits_from(int(sys.argv[1]))
    sys.exit(albert_jax.cli.main(sys.argv[2:]))
