"""The interface every task reader implements."""

from __future__ import annotations

import abc
from typing import Generic, TypeVar

from albert_jax.errors import InputError

E = TypeVar("E")


class ExampleReader(abc.ABC, Generic[E]):
    """Reads the splits of one dataset as lists of examples, in a fixed order.

    Split names are the same for every source: "train", "dev" and "test" (MNLI adds
    "dev_mismatched" and "test_mismatched"), whatever the files or the tfds splits are called.
    """

    #: What is read, for messages: e.g. "GLUE mnli (TSV files in /data/glue)".
    name: str
    #: The splits `read` accepts.
    splits: tuple[str, ...]

    @property
    @abc.abstractmethod
    def labels(self) -> tuple[str, ...] | None:
        """The label names in class-id order (the head's output i is `labels[i]`), or None for a
        regression task."""

    def read(self, split: str) -> list[E]:
        """All examples of `split`; raises InputError for a split this reader does not have."""
        if split not in self.splits:
            raise InputError(f"{self.name} has no split {split!r}; it has {', '.join(self.splits)}")
        return self._read(split)

    @abc.abstractmethod
    def _read(self, split: str) -> list[E]:
        """`read` for a split known to be in `splits`."""


def shown(value: object, limit: int = 40) -> str:
    """repr of a value for a message, cut short: a misaligned row can put a paragraph there."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
