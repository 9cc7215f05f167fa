"""Reading the UTF-8 text files users hand to task commands (local or `gs://`), with one-line
errors that name the file and, where it helps, the line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from albert_jax.errors import InputError

if TYPE_CHECKING:
    from etils import epath

PathLike = str | os.PathLike[str]


def text_lines(path: PathLike) -> Iterator[str]:
    """The lines of a UTF-8 file, line ends kept; a leading byte-order mark (GLUE's MRPC files
    have one) is dropped.

    Raises InputError for a missing or unreadable file (a directory, say), and for bytes that are
    not UTF-8 (naming the first such line).
    """
    from etils import epath  # here, not above: the CLI imports this module to build its parser

    path = epath.Path(path)
    try:
        with path.open("r") as lines:
            # epath always decodes UTF-8 and ignores encoding="utf-8-sig", so the mark stays.
            first = next(lines, None)
            if first is not None:
                yield first.removeprefix("\ufeff")
                yield from lines
    except FileNotFoundError as error:
        raise InputError(f"no file {str(path)!r}") from error
    except UnicodeDecodeError as error:
        # The decoder reads ahead in blocks, so the line it failed on is found again here.
        raise InputError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text") from error
    except OSError as error:
        raise InputError(f"cannot read {str(path)!r}: {error.strerror or error}") from error


def read_text(path: PathLike) -> str:
    """The whole text of a UTF-8 file, as `text_lines` reads it."""
    return "".join(text_lines(path))


def _first_undecodable_line(path: epath.Path) -> int:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1  # unreachable for a file that failed to decode; keeps the message well-formed
