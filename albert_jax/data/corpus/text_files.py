"""Local text files in the BERT/ALBERT format: one sentence per line, a blank line between
documents. Plain or gzip-compressed (by the `.gz` suffix)."""

from __future__ import annotations

import codecs
import glob
import gzip
import logging
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from albert_jax.data.corpus.base import Corpus, Document
from albert_jax.errors import InputError

log = logging.getLogger(__name__)

# A file without blank lines is one document; cutting it every so many sentences keeps memory
# bounded. Wikipedia articles stay far below this.
MAX_DOCUMENT_SENTENCES = 10_000

# How much of each file is read up front to tell text from binary data (git and grep look at
# the first 8000 bytes for the same purpose).
SNIFF_BYTES = 8192

# What reading a file can raise: unreadable, or a corrupt (zlib) or truncated (EOF) .gz.
_READ_ERRORS = (OSError, EOFError, zlib.error)


class TextFiles(Corpus):
    """Documents from files named by paths or glob patterns, in the order given.

    A pattern naming an existing file is that file, even if it holds glob characters. Files
    matched by one pattern are read in sorted order; a file boundary also ends a document.

    Each file's start is checked when the source is made: a NUL byte there, or a majority of
    lines that are not UTF-8, means it is not UTF-8 text and it is refused (InputError naming
    FILE:LINE). Further on, lines that are not UTF-8 are skipped, counted in `skipped_lines`
    and reported in a warning at the end of each file: a few stray bytes do not cost the run.
    """

    def __init__(self, patterns: Sequence[str | os.PathLike[str]]) -> None:
        if not patterns:
            raise InputError("no input files given")
        self.files = _expand(patterns)
        for path in self.files:
            _check_is_text(path)
        self.skipped_lines = 0

    @property
    def identity(self) -> dict[str, Any]:
        files = []
        for path in self.files:
            try:
                stat = path.stat()
            except OSError as error:
                raise InputError(f"cannot read {str(path)!r}: {error.strerror}") from error
            files.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        return {"source": "text_files", "files": files}

    @property
    def description(self) -> str:
        more = len(self.files) - 1
        return repr(str(self.files[0])) + (f" and {more} more file(s)" if more else "")

    def __iter__(self) -> Iterator[Document]:
        for path in self.files:
            yield from self._read(path)

    def _read(self, path: Path) -> Iterator[Document]:
        skipped = 0
        document: Document = []
        try:
            with _open(path) as lines:
                for raw in lines:
                    try:
                        line = raw.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        skipped += 1
                        continue
                    if line:
                        document.append(line)
                        if len(document) < MAX_DOCUMENT_SENTENCES:
                            continue
                    if document:
                        yield document
                        document = []
        except _READ_ERRORS as error:
            raise InputError(f"cannot read {str(path)!r}: {error}") from error
        if document:
            yield document
        if skipped:
            self.skipped_lines += skipped
            log.warning("%s: skipped %d line(s) that are not UTF-8", path, skipped)


def _expand(patterns: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        pattern = os.path.expanduser(os.fspath(pattern))
        # "data[1].txt" is that file, not a pattern matching "data1.txt".
        matches = [pattern] if os.path.exists(pattern) else sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise InputError(f"no file matches {pattern!r}")
        for match in matches:
            if not os.path.isfile(match):
                raise InputError(f"{match!r} is not a file")
            files.append(Path(match).resolve())
    return files


def _check_is_text(path: Path) -> None:
    """Refuses `path` if its first `SNIFF_BYTES` (decompressed) are not UTF-8 text."""
    try:
        with _open(path) as file:
            head = file.read(SNIFF_BYTES)
    except _READ_ERRORS as error:
        raise InputError(f"cannot read {str(path)!r}: {error}") from error
    lines = head.split(b"\n")
    # Where the head stops short of the end, its last line may be cut, even inside a character.
    cut = len(head) == SNIFF_BYTES
    bad = [
        number
        for number, line in enumerate(lines, 1)
        if not _is_text(line, final=not (cut and number == len(lines)))
    ]
    has_nul = b"\0" in head
    if bad and (has_nul or 2 * len(bad) > sum(1 for line in lines if line.strip())):
        raise InputError(
            f"not UTF-8 text at {path}:{bad[0]}" + (" (it holds NUL bytes)" if has_nul else "")
        )


def _is_text(line: bytes, *, final: bool) -> bool:
    """Whether `line` is UTF-8 without NUL bytes; with `final=False` it may end mid-character."""
    if b"\0" in line:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(line, final=final)
    except UnicodeDecodeError:
        return False
    return True


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
