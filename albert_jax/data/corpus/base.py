"""The interface every corpus source implements."""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable, Iterator
from typing import Any

Document = list[str]


class Corpus(abc.ABC):
    """A deterministic, re-iterable stream of documents (lists of sentence strings)."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Document]:
        """Yields the documents in a fixed order; sentences are stripped and non-empty."""

    @property
    @abc.abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-able description that changes whenever the documents could change.

        Stored with prepared datasets, and compared to decide whether a partial run can resume.
        """

    @property
    def description(self) -> str:
        """Names the source in messages, e.g. "'wiki.txt'"; sources say it better than this."""
        return json.dumps(self.identity)


def sentences(documents: Iterable[Document]) -> Iterator[str]:
    """All sentences of all documents, in order: the input a tokenizer trains on."""
    for document in documents:
        yield from document
