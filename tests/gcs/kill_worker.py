"""`albert-jax ARGS...` that kills itself (SIGKILL: no handler, no save) as step STEP ends, once
the run's first checkpoint is complete in its workdir:

    python kill_worker.py STEP ARGS...
"""

import os
import signal
import sys
import time

import albert_jax.cli


def kill_at(step: int, workdir: str) -> None:
    from albert_jax.train import checkpoint, loop

    reached = loop._StopSignal.reached  # asked at the end of every step

    def reached_then_killed(self, current: int) -> bool:
        if current == step:
            deadline = time.monotonic() + 120
            while not checkpoint.saved_steps(workdir) and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)
        return reached(self, current)

    loop._StopSignal.reached = reached_then_killed


if __name__ == "__main__":
    # As albert_jax.cli.main does, before orbax is imported (see tests/train/fault_worker.py).
    albert_jax.cli.configure_logging()
    step, args = int(sys.argv[1]), sys.argv[2:]
    kill_at(step, args[args.index("--workdir") + 1])
    sys.exit(albert_jax.cli.main(args))
