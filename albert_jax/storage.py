"""Files on a local disk or in Cloud Storage (`gs://bucket/...`), through one path type.

Every path the user gives (workdir, data, tokenizer, pretrained model) is an `etils.epath.Path`:
local paths go through `os`, `gs://` paths through tf.io.gfile when TensorFlow is installed and
through gcsfs otherwise (set `EPATH_USE_TF=false` to use gcsfs anyway). Orbax and tfds take the
same paths. What differs between the two kinds is kept here:

- a local file is written under a temporary name and renamed into place; an object upload is
  already atomic (the object appears whole or not at all), and object stores cannot rename;
- object stores cannot append: an appended line rewrites the object;
- object stores have no directories to create, and no permissions `os.access` could check.
"""

from __future__ import annotations

import os

from etils import epath

PathLike = str | os.PathLike


def is_local(path: PathLike) -> bool:
    """False for a URI with a scheme (`gs://`, `s3://`, ...)."""
    return "://" not in os.fspath(path)


def absolute(path: PathLike) -> epath.Path:
    """`path` made absolute, as orbax wants its directories; a URI is absolute already."""
    return epath.Path(path if not is_local(path) else os.path.abspath(path))


def write_atomically(path: PathLike, data: str | bytes) -> None:
    """Writes `data` so that a reader (or a rerun after a crash) finds the old file or the
    whole new one, never a part."""
    path = epath.Path(path)
    write = epath.Path.write_bytes if isinstance(data, bytes) else epath.Path.write_text
    if not is_local(path):
        write(path, data)
        return
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary, data)
        temporary.replace(path)
    finally:
        if temporary.exists():
            temporary.unlink()


def append_atomically(path: PathLike, text: str) -> None:
    """Appends `text` to the file at `path` (made if missing), all of it or nothing: rewrites
    the file, so for small files only (a record of config changes, not a log)."""
    path = epath.Path(path)
    write_atomically(path, (path.read_text() if path.exists() else "") + text)


def make_dirs(path: PathLike) -> None:
    """Creates the directory `path` and its parents (nothing to create in an object store)."""
    if is_local(path):
        os.makedirs(path, exist_ok=True)
