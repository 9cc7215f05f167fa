"""Reading a dataset of documents written by `prepare` (the trainer never imports the writer).

Each record is one document: `token_ids` (int32, the sentences' ids end to end) and
`sentence_lengths` (int32, ids per sentence). The folder is a tfds dataset in ArrayRecord,
read here through tfds's data source, without TensorFlow.
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils.epath import Path

from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError

DATASET_NAME = "albert_documents"
TRAIN_SPLIT = "train"
EVAL_SPLIT = "validation"
SPLITS = (TRAIN_SPLIT, EVAL_SPLIT)
# Bump when the record layout changes, so old datasets and partial runs are not mixed in.
FORMAT_VERSION = 1


def document_features() -> tfds.features.FeaturesDict:
    """The tfds features of a prepared document."""
    return tfds.features.FeaturesDict(
        {
            "token_ids": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            "sentence_lengths": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        }
    )


class DocumentSource(Sequence[dict[str, np.ndarray]]):
    """Random access to one split of a prepared dataset; picklable for grain worker processes.

    `source[i]` is `{"token_ids": int32 [T], "sentence_lengths": int32 [S]}`.
    """

    def __init__(self, directory: str | os.PathLike[str], split: str) -> None:
        self.directory = Path(directory)
        self.split = split
        info_file = self.directory / "dataset_info.json"
        if not (info_file.is_file() and (self.directory / "metadata.json").is_file()):
            raise InputError(
                f"{str(self.directory)!r} is not a prepared dataset "
                "(make one with `albert-jax data prepare`)"
            )
        builder = tfds.builder_from_directory(os.fspath(self.directory))
        self.metadata: dict[str, Any] = dict(builder.info.metadata or {})
        if self.metadata.get("format_version") != FORMAT_VERSION:
            raise InputError(
                f"{str(self.directory)!r} was prepared in another format "
                f"({self.metadata.get('format_version')}, expected {FORMAT_VERSION}); "
                "prepare it again"
            )
        if split not in builder.info.splits:
            raise InputError(f"{str(self.directory)!r} has no split {split!r}")
        # tfds cannot open a split without shards; an empty held-out split is legitimate.
        self._length = builder.info.splits[split].num_examples
        self._source = builder.as_data_source(split) if self._length else None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:  # type: ignore[override]
        index = operator.index(index)
        if not -self._length <= index < self._length:
            raise IndexError(f"document {index} of a split of {self._length} ({self.split!r})")
        return self._source[index % self._length]

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, np.ndarray]]:
        """Several records in one read (grain uses this when it batches reads)."""
        for index in indices:
            if not 0 <= index < self._length:
                raise IndexError(f"document {index} of a split of {self._length} ({self.split!r})")
        return list(self._source.__getitems__(indices)) if indices else []

    def __getstate__(self) -> dict[str, Any]:
        return {"directory": self.directory, "split": self.split}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["directory"], state["split"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"DocumentSource({str(self.directory)!r}, split={self.split!r}, len={len(self)})"


def load_documents(
    directory: str | os.PathLike[str],
    split: str = TRAIN_SPLIT,
    tokenizer: Tokenizer | None = None,
) -> DocumentSource:
    """Opens a split of a dataset written by `prepare`.

    With `tokenizer`, refuses (InputError) a dataset tokenized by another tokenizer.
    """
    source = DocumentSource(directory, split)
    if tokenizer is not None and source.metadata["tokenizer_fingerprint"] != tokenizer.fingerprint:
        raise InputError(
            f"{str(source.directory)!r} was tokenized by another tokenizer "
            f"(vocabulary {source.metadata['tokenizer_vocab_size']}, sha256 "
            f"{source.metadata['tokenizer_fingerprint'][:12]}...) than {tokenizer!r} "
            f"(vocabulary {tokenizer.vocab_size}, sha256 {tokenizer.fingerprint[:12]}...)"
        )
    return source
