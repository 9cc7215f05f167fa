"""Reading delimited and JSON-lines files, with errors that name the file and line; the lines
come from `tasks.files.text_lines` (re-exported here for the readers)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from etils import epath

from albert_jax.errors import InputError
from albert_jax.tasks.files import PathLike, text_lines

__all__ = ["PathLike", "delimited_rows", "json_lines", "text_lines"]


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
