"""tensorflow-datasets in tests without a download: real tfds builders fed with small local
files, prepared as ArrayRecord, and a data source that serves given records."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.testing import mocking


@contextlib.contextmanager
def downloads_from(folder: Path) -> Iterator[None]:
    """Every `download_and_extract` inside returns `folder`: builders read our files."""
    with mock.patch.object(
        tfds.download.DownloadManager, "download_and_extract", lambda self, url: epath.Path(folder)
    ):
        yield


@contextlib.contextmanager
def mock_data(**kwargs: Any) -> Iterator[None]:
    """`tfds.testing.mock_data` with batched reads working: tfds 4.9.10 stores the mock data
    source's `__getitems__` as a plain attribute, which is then called without `self`."""

    def getitems(record_keys, generator, serialized=False):
        assert not serialized
        return [generator[key] for key in record_keys]

    with mock.patch.object(mocking, "_getitems", getitems), tfds.testing.mock_data(**kwargs):
        yield


def prepare(builder_class: type, name: str, data_dir: Path, source: Path, config: str | None = None) -> None:
    """Prepares the real builder `builder_class` (registered as `name`) from the files in
    `source`, as ArrayRecord under `data_dir`, where `tfds.builder(name)` then finds it."""

    # tfds 4.9.10 finds a packaged builder's checksums through `importlib_resources`, which it
    # installs only on Python < 3.9; an unregistered subclass without a code path skips that.
    class Local(builder_class, skip_registration=True):
        code_path = None

    Local.name = name
    with downloads_from(source):
        Local(config=config, data_dir=data_dir, file_format="array_record").download_and_prepare()


class RecordSource(Sequence):
    """A random-access data source over given records, as `builder.as_data_source` returns."""

    def __init__(self, records: Sequence[dict[str, Any]]) -> None:
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index):
        return self.records[index]

    def __getitems__(self, indices) -> list[dict[str, Any]]:
        return [self.records[i] for i in indices]


def serve(records_by_split: dict[str, Sequence[dict[str, Any]]]):
    """An `as_data_source_fn` for `tfds.testing.mock_data` that serves these records."""

    def as_data_source(builder, split, **kwargs):
        return RecordSource(records_by_split[split])

    return as_data_source
