"""Local text files in the BERT/ALBERT format: one sentence per line, a blank line between
documents. Plain or gzip-compressed (by the `.gz` suffix)."""

from __future__ import annotations

import glob
import gzip
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from albert_jax.data.corpus.base import Corpus, Document
from albert_jax.errors import InputError

log = logging.getLogger(__name__)

# A file without blank lines is one document; cutting it every so many sentences keeps memory
# bounded. Wikipedia articles stay far below this.
MAX_DOCUMENT_SENTENCES = 10_000


class TextFiles(Corpus):
    """Documents from files named by paths or glob patterns, in the order given.

    Files matched by one pattern are read in sorted order. Lines that are not UTF-8 are skipped,
    counted in `skipped_lines` and reported in a warning at the end of each file. A file
    boundary also ends a document.
    """

    def __init__(self, patterns: Sequence[str | os.PathLike[str]]) -> None:
        if not patterns:
            raise InputError("no input files given")
        self.files = _expand(patterns)
        self.skipped_lines = 0

    @property
    def identity(self) -> dict[str, Any]:
        files = []
        for path in self.files:
            stat = path.stat()
            files.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
        return {"source": "text_files", "files": files}

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
        except (OSError, EOFError) as error:  # unreadable, or a corrupt or truncated .gz
            raise InputError(f"cannot read {str(path)!r}: {error}") from error
        if document:
            yield document
        if skipped:
            self.skipped_lines += skipped
            log.warning("%s: skipped %d line(s) that are not UTF-8", path, skipped)


def _expand(patterns: Sequence[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        pattern = os.fspath(pattern)
        matches = sorted(glob.glob(os.path.expanduser(pattern), recursive=True))
        if not matches:
            raise InputError(f"no file matches {pattern!r}")
        for match in matches:
            if not os.path.isfile(match):
                raise InputError(f"{match!r} is not a file")
            files.append(Path(match).resolve())
    return files


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
