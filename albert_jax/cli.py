"""The `albert-jax` command. Each package registers its own subcommands here."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from albert_jax.errors import InputError

# Modules that define `register(subparsers)`; each adds its subcommands.
_COMMAND_MODULES = (
    "albert_jax.data.cli",
    "albert_jax.train.cli",
    "albert_jax.tasks.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="albert-jax", description="Pretrain and fine-tune ALBERT in JAX/Flax."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # Commands that take `--config.key=value` overrides receive the leftovers; others reject them.
    if unknown and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.run(args, unknown) or 0)
    except InputError as error:
        print(f"albert-jax {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
