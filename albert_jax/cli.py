"""The `albert-jax` command. Each package registers its own subcommands here.

Besides a command's own exit status, `main` gives: bad input (`InputError`) as one line and
status 2, and so an `OSError` that names a file (the file system refused a path for a reason no
check foresaw, such as a name too long); Ctrl-C as one line and status 130; a reader that stops
early (`albert-jax data inspect --json | head -1`) silence and status 141, as for a process
killed by SIGPIPE. Any other exception is a bug, and keeps its traceback.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import select
import signal
import sys

from albert_jax.errors import InputError

# Modules that define `register(subparsers)`; each adds its subcommands.
_COMMAND_MODULES = (
    "albert_jax.data.cli",
    "albert_jax.train.cli",
    "albert_jax.tasks.cli",
)

# What Ctrl-C prints unless the command sets `on_interrupt` (parser.set_defaults) to say more,
# e.g. that rerunning it resumes, or raises a KeyboardInterrupt whose message says what it did.
_INTERRUPTED = "interrupted"

# Shells report a process killed by signal N as 128 + N; these exits mimic those deaths.
_EXIT_INTERRUPTED = 128 + signal.SIGINT
_EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="albert-jax", description="Pretrain and fine-tune ALBERT in JAX/Flax."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def configure_logging() -> None:
    """albert_jax's own records from INFO, other libraries' from WARNING: JAX, orbax (through
    absl) and grain report routine work at INFO, which would bury the run's own lines."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("albert_jax").setLevel(logging.INFO)


# Signs of an accelerator before JAX starts: variables a TPU VM's runtime reads, device nodes of
# TPUs and of NVIDIA and AMD GPUs (WSL's too), and Google's PCI vendor id (TPU chips; also its
# virtual NICs, which only makes the check cautious).
_TPU_VARIABLES = ("TPU_NAME", "TPU_ACCELERATOR_TYPE", "TPU_WORKER_HOSTNAMES", "JAX_FORCE_TPU_INIT")
_ACCELERATOR_NODES = ("dev/accel*", "dev/vfio/[0-9]*", "dev/nvidia[0-9]*", "dev/nvidiactl", "dev/kfd", "dev/dxg")
_GOOGLE_PCI_VENDOR = "0x1ae0"


def _no_accelerator_in_sight(root: str = "/") -> bool:
    """Whether this machine (its file system at `root`) shows no sign of a TPU or GPU."""
    if any(name in os.environ for name in _TPU_VARIABLES):
        return False
    if any(glob.glob(os.path.join(root, pattern)) for pattern in _ACCELERATOR_NODES):
        return False
    for vendor in glob.glob(os.path.join(root, "sys/bus/pci/devices/*/vendor")):
        try:
            with open(vendor) as file:
                if file.read().strip() == _GOOGLE_PCI_VENDOR:
                    return False
        except OSError:
            return False
    return True


def _skip_the_tpu_probe() -> None:
    """libtpu (the [tpu] extra, installed to compile for pods on any machine) makes JAX try a TPU
    backend in every process; where there is none, libtpu prints six lines of errors before JAX
    falls back to the CPU. So where no accelerator is in sight and no JAX plugin for one is
    installed, JAX starts on the CPU directly; unless JAX_PLATFORMS says otherwise, or JAX is
    already imported (an in-process caller keeps its settings)."""
    if "jax" in sys.modules or "JAX_PLATFORMS" in os.environ or importlib.util.find_spec("libtpu") is None:
        return
    if importlib.metadata.entry_points(group="jax_plugins") or importlib.util.find_spec("jax_plugins"):
        return
    if _no_accelerator_in_sight():
        os.environ["JAX_PLATFORMS"] = "cpu"


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    _skip_the_tpu_probe()
    prog = "albert-jax"
    args: argparse.Namespace | None = None
    # Importing the command modules takes seconds: Ctrl-C may come before any command runs.
    try:
        parser = build_parser()
        args, unknown = parser.parse_known_args(argv)
        prog = f"albert-jax {args.command}"
        # Commands that take `--config.key=value` overrides receive the leftovers; others
        # reject them.
        if unknown and not getattr(args, "accepts_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        return int(args.run(args, unknown) or 0)
    except InputError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        # A command that stopped cleanly on Ctrl-C says what it saved (`train.loop`).
        message = str(interrupt) or getattr(args, "on_interrupt", _INTERRUPTED)
        print(f"{prog}: {message}", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except BrokenPipeError:
        # Only a closed stdout means "the reader has seen enough"; any other pipe is a failure.
        if not _stdout_is_closed():
            raise
        return _EXIT_BROKEN_PIPE
    except OSError as error:
        if error.filename is None:
            raise
        print(f"{prog}: error: cannot use {os.fsdecode(error.filename)!r}: {error.strerror}", file=sys.stderr)
        return 2


def _stdout_is_closed() -> bool:
    """Whether stdout's reader has gone; if so, points stdout at /dev/null so that the flush
    at exit does not fail again ("Exception ignored ... BrokenPipeError")."""
    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        # A pipe whose reader has gone polls as an error; a socket's as a hang-up.
        closed = any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
        if closed:
            os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
        return closed
    except (AttributeError, OSError, ValueError):  # a stdout without a file descriptor
        return False


if __name__ == "__main__":
    sys.exit(main())
