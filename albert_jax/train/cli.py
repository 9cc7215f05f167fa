"""The `albert-jax pretrain` and `albert-jax plot` subcommands."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from albert_jax.train import config as config_lib

_OVERRIDES_HELP = """\
Any config key can be overridden with --config.KEY=VALUE, nested keys with dots, e.g.
  --config.num_train_steps=1000 --config.mesh.fsdp=4 --config.model.dtype=bfloat16
Unknown keys are an error. The keys and their meaning: albert_jax/train/config.py."""

_SHIPPED_HELP = ("a config shipped with albert_jax is found by name from any directory: "
                 "pretrain/base.py:v2, pretrain/base:v2")


def register(subparsers: argparse._SubParsersAction) -> None:
    pretrain = subparsers.add_parser(
        "pretrain", help="pretrain ALBERT (MLM + SOP) from a config",
        description="Pretrain ALBERT (MLM + SOP). Rerunning the same command resumes from the\n"
                    "newest checkpoint in the workdir. On a pod, run it on every host.\n"
                    "Compiled steps are cached in ~/.cache/albert_jax/xla ($ALBERT_JAX_CACHE/xla) and\n"
                    "reused by later runs; JAX_COMPILATION_CACHE_DIR=DIR caches elsewhere, =\"\" not at all.",
        epilog=_OVERRIDES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    pretrain.add_argument(
        "--config", metavar="FILE[:ARG]",
        help=f"config file and its argument, e.g. configs/pretrain/base.py:v2; {_SHIPPED_HELP} "
             "(default: pretrain/tiny.py, a tiny model on the built-in corpus)")
    pretrain.add_argument(
        "--workdir", metavar="DIR",
        help="where checkpoints, metrics and TensorBoard files go "
             "(default: albert_jax_workdirs/<config name> in the current directory)")
    add_cluster_arguments(pretrain)
    pretrain.set_defaults(run=_pretrain, accepts_overrides=True)

    compile_ = subparsers.add_parser(
        "compile", help="compile a config's train step ahead of time for a TPU slice",
        description="Compile the real train step of a config for a TPU slice on this machine (no TPU "
                    "needed; libtpu is: pip install 'albert_jax[tpu]') and report per chip the memory "
                    "for parameters, optimizer state, activations and temporaries against HBM, the "
                    "FLOPs per step, and the compiler's estimated step time and MFU. Exits 2 when the "
                    "config does not fit.",
        epilog=_OVERRIDES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    compile_.add_argument("--config", metavar="FILE[:ARG]", required=True,
                          help=f"config file and its argument, e.g. configs/pretrain/base.py:v2; {_SHIPPED_HELP}")
    compile_.add_argument("--topology", metavar="NAME", required=True,
                          help="TPU slice: v4:2x2x2, v5e:4x4, v5p:4x4x4, v6e:8x8, ...")
    compile_.set_defaults(run=_compile, accepts_overrides=True)

    plot = subparsers.add_parser(
        "plot", help="plot a workdir's loss, accuracy and throughput curves to a PNG",
        description="Render WORKDIR/metrics.jsonl as loss, accuracy and throughput curves.")
    plot.add_argument("workdir", metavar="WORKDIR", help="a pretraining workdir")
    plot.add_argument("--output", metavar="PNG", help="output file (default: WORKDIR/metrics.png)")
    plot.set_defaults(run=_plot)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The multi-process options of a training command."""
    multihost = parser.add_argument_group(
        "multi-process", "Only needed where JAX cannot detect the cluster itself (it detects TPU\n"
        "pods and SLURM). JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID work too.")
    multihost.add_argument("--coordinator-address", type=_address, metavar="HOST:PORT",
                           help="address of process 0's coordination service")
    multihost.add_argument("--num-processes", type=_count(1), action=_ProcessIndex, metavar="N",
                           help="number of processes")
    multihost.add_argument("--process-id", type=_count(0), action=_ProcessIndex, metavar="I",
                           help="this process's index: 0 to N-1")


def _address(text: str) -> str:
    from albert_jax.train import mesh

    try:
        return mesh.parse_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(minimum: int):
    def parse(text: str) -> int:
        from albert_jax.train import mesh

        try:
            return mesh.parse_count(text, minimum)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


class _ProcessIndex(argparse.Action):
    """Stores --num-processes or --process-id; whichever comes second checks that the index is
    below the count (JAX would raise a bare ValueError later)."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        setattr(namespace, self.dest, value)
        count, index = namespace.num_processes, namespace.process_id
        if count is not None and index is not None and index >= count:
            parser.error(f"--process-id {index} is not below --num-processes {count}: "
                         f"the processes are numbered 0 to {count - 1}")


def default_workdir(config_spec: str | None) -> str:
    """albert_jax_workdirs/<config file stem>[_<arg>], e.g. albert_jax_workdirs/base_v2."""
    path, _, arg = (config_spec or config_lib.DEFAULT_PRETRAIN_CONFIG).partition(":")
    name = os.path.splitext(os.path.basename(path))[0] + (f"_{arg}" if arg else "")
    return os.path.join("albert_jax_workdirs", name)


def _pretrain(args: argparse.Namespace, overrides: list[str]) -> int:
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import loop, mesh

    run = resolve(config_lib.load_config(args.config, overrides))
    # JAX must join the cluster before anything touches a device.
    mesh.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    workdir = args.workdir or default_workdir(args.config)
    print(f"albert-jax pretrain: workdir {workdir}", flush=True)
    with compilation_cache():
        loop.train(run, workdir)
    return 0


@contextlib.contextmanager
def compilation_cache() -> Iterator[None]:
    """While the block runs, compiled programs go to JAX's persistent cache, `xla/` in the
    albert_jax cache directory, so that rerunning a run does not compile its steps again.

    A cache the caller chose wins: JAX_COMPILATION_CACHE_DIR (empty: no cache) or
    `jax_compilation_cache_dir` set in this process. Afterwards JAX is as it was, so a program
    that runs a command in-process (`albert_jax.cli.main`) keeps its own settings."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as jax_cache

    if "JAX_COMPILATION_CACHE_DIR" in os.environ or jax.config.jax_compilation_cache_dir:
        yield
        return
    from albert_jax.data.builtin_dataset import cache_dir

    jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
    jax_cache.reset_cache()  # JAX decides whether to use a cache once, at its first compile
    try:
        yield
    finally:
        jax.config.update("jax_compilation_cache_dir", None)
        jax_cache.reset_cache()


def _compile(args: argparse.Namespace, overrides: list[str]) -> int:
    import jax

    # Compile on this machine's CPU for the described TPUs: never start a local accelerator (a
    # TPU VM's chips may be busy training). Only the config can say so once jax is imported (the
    # JAX_PLATFORMS variable is read at import), and only before the first backend starts.
    jax.config.update("jax_platforms", "cpu")
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import aot

    run = resolve(config_lib.load_config(args.config, overrides))
    print(aot.compile_for_topology(run, args.topology).format())
    return 0


def _plot(args: argparse.Namespace, overrides: list[str]) -> int:
    from albert_jax.train import plot

    print(plot.plot(args.workdir, args.output))
    return 0
