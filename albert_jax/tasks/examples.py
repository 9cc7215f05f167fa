"""Raw fine-tuning examples, as the readers give them: text and label names, nothing tokenized.

Every reader of every task returns one of these three types, so feature code is written once per
type rather than once per dataset. `guid` is unique within a split and stable from run to run.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TextExample:
    """One text, or a pair of texts, with a class name or a regression target.

    `label` is a class name (a string, e.g. "entailment" or "1") for classification, a float for
    regression, and None for unlabelled data (GLUE test sets, prediction inputs).
    """

    guid: str
    text_a: str
    text_b: str | None
    label: str | float | None


@dataclasses.dataclass(frozen=True)
class ChoiceExample:
    """A multiple-choice question about an article (RACE): `label` indexes `options`, or is None
    when the answer is unknown."""

    guid: str
    article: str
    question: str
    options: tuple[str, ...]
    label: int | None


@dataclasses.dataclass(frozen=True)
class TaggedExample:
    """A sentence as words, with one tag name per word (e.g. "B-PER"), or None when untagged."""

    guid: str
    words: tuple[str, ...]
    tags: tuple[str, ...] | None
