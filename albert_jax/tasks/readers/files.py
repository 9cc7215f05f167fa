"""Reading local (or `gs://`) text files line by line, with errors that name the file and line."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from typing import Any

from etils import epath

from albert_jax.errors import InputError

PathLike = str | os.PathLike[str]


def text_lines(path: PathLike) -> Iterator[str]:
    """The lines of a UTF-8 file, line ends kept; a leading byte-order mark is dropped.

    Raises InputError for a missing or unreadable file, and for bytes that are not UTF-8 (naming
    the first such line).
    """
    path = epath.Path(path)
    try:
        with path.open("r", encoding="utf-8-sig") as lines:
            yield from lines
    except FileNotFoundError as error:
        raise InputError(f"no file {str(path)!r}") from error
    except UnicodeDecodeError as error:
        # The decoder reads ahead in blocks, so the line it failed on is found again here.
        raise InputError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text") from error
    except OSError as error:
        raise InputError(f"cannot read {str(path)!r}: {error}") from error


def delimited_rows(path: PathLike, *, delimiter: str, quoting: int) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each row with some text, from a delimited file as `csv` reads it."""
    reader = csv.reader(text_lines(path), delimiter=delimiter, quoting=quoting)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise InputError(f"{epath.Path(path)}:{reader.line_num}: {error}") from error
        if any(field.strip() for field in row):
            yield reader.line_num, row


def json_lines(path: PathLike) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a file holding one JSON value per line."""
    for number, line in enumerate(text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{epath.Path(path)}:{number}: not JSON ({error.msg})") from error
        yield number, value


def _first_undecodable_line(path: epath.Path) -> int:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1  # unreachable for a file that failed to decode; keeps the message well-formed
