"""Estimated MFU of the paper's configs on TPU slices, from ahead-of-time compiles on this machine.

For each config and slice, compiles the real train step (`albert_jax.train.aot`) four times:
attention "xla" or "splash", rows padded (one example each) or packed (`data.packing`), and
prints one markdown row per compile as it finishes. MFU is the compiler's step-time estimate
against the model's FLOPs per row (`albert-jax compile`); "useful MFU" counts only the tokens
that are not padding, MFU x (1 - padding fraction), with the fractions `albert-jax data inspect
DIR --padding` measures (defaults: the built-in corpus at 512 tokens).

    python scripts/tpu_mfu.py                                   # base v2 on v5p:4x4x4, xxlarge v2 on v5p:4x8x8
    python scripts/tpu_mfu.py --run configs/pretrain/large.py:v2@v5p:4x4x4 --attention splash

Compiles run one after another (each takes minutes and much of the machine's memory).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence

import jax

from albert_jax.errors import InputError
from albert_jax.train import aot
from albert_jax.train.devices import GiB

HEADER = ("| config | slice | attention | rows | memory per chip | TFLOP per chip: model / compiled "
          "(+ splash, counted) | step (estimate) | MFU | padding | useful MFU |\n"
          "|---|---|---|---|---|---|---|---|---|---|")
DEFAULT_RUNS = ("configs/pretrain/base.py:v2@v5p:4x4x4", "configs/pretrain/xxlarge.py:v2@v5p:4x8x8")


def table_row(config: str, topology: str, attention: str, packing: bool, padding: float,
              overrides: Sequence[str] = ()) -> str:
    """Compiles one variant for `topology` and returns its markdown row (a config that does not
    fit, or cannot be compiled, says so in the row)."""
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import config as config_lib

    variant = [config.removeprefix("configs/pretrain/"), topology, attention, "packed" if packing else "padded"]
    try:
        run = resolve(config_lib.load_config(config, [
            f"--config.model.attention_implementation={attention}", f"--config.data.packing={packing}",
            *overrides]))
        report = aot.compile_for_topology(run, topology)
    except InputError as error:
        return "| " + " | ".join(variant + [str(error).replace("|", "/")] + [""] * 5) + " |"
    return format_row(variant, report, padding)


def format_row(variant: list[str], report: aot.CompileReport, padding: float) -> str:
    """The markdown row of `report`, the variant's first cells given; `padding`: the share of
    padding tokens in its rows."""
    compiled = "unknown" if report.compiler_flops is None else f"{report.compiler_flops / 1e12:.2f}"
    if report.kernel_flops:
        compiled += f" (+ {report.kernel_flops / 1e12:.2f})"
    seconds, mfu = report.estimated_seconds, report.mfu
    cells = variant + [
        f"{report.total_bytes / GiB:.1f} of {report.hbm_bytes / GiB:.0f} GiB" if report.hbm_bytes
        else f"{report.total_bytes / GiB:.1f} GiB",
        f"{report.model_flops / 1e12:.2f} / {compiled}",
        f"{seconds * 1e3:.1f} ms" if seconds else "unknown",
        f"{mfu:.1%}" if mfu is not None else "unknown",
        f"{padding:.1%}",
        f"{mfu * (1 - padding):.1%}" if mfu is not None else "unknown",
    ]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs="+", default=DEFAULT_RUNS, metavar="CONFIG@TOPOLOGY",
                        help="configs and the slices to compile them for")
    parser.add_argument("--attention", nargs="+", default=("xla", "splash"), choices=("xla", "splash"))
    parser.add_argument("--packing", nargs="+", default=("padded", "packed"), choices=("padded", "packed"))
    parser.add_argument("--padded-fraction", type=float, default=0.405,
                        help="share of padding tokens in padded rows (default: the built-in corpus at 512)")
    parser.add_argument("--packed-fraction", type=float, default=0.031,
                        help="share of padding tokens in packed rows (default: the built-in corpus at 512)")
    args, overrides = parser.parse_known_args(argv)
    if bad := [arg for arg in overrides if not arg.startswith("--config.")]:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    # Compile on this machine's CPU for the described TPUs, as `albert-jax compile` does.
    jax.config.update("jax_platforms", "cpu")
    print(HEADER, flush=True)
    for spec, attention, rows in itertools.product(args.run, args.attention, args.packing):
        config, _, topology = spec.rpartition("@")
        packing = rows == "packed"
        start = time.perf_counter()
        print(table_row(config, topology, attention, packing,
                        args.packed_fraction if packing else args.padded_fraction, overrides), flush=True)
        print(f"  ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
