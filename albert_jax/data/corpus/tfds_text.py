"""Any tensorflow-datasets dataset with a text feature, by name (e.g. `wikipedia/20230601.en`).

Each example is one document. A `Text` feature is split into sentences with the rule-based
splitter (each line break also ends a sentence); a `Sequence(Text)` feature is taken as
sentences already split. The dataset must be prepared already (`tfds build NAME --data_dir D`
or `tfds.builder(NAME).download_and_prepare()`): nothing is downloaded here.

Datasets stored as ArrayRecord are read without TensorFlow; those stored as TFRecord (most of
the catalogue, Wikipedia included) need TensorFlow installed for this one-off step only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from albert_jax.data.corpus.base import Corpus, Document
from albert_jax.data.corpus.splitter import split_sentences
from albert_jax.errors import InputError

# Examples fetched per random-access read.
_READ_BLOCK = 256


class TfdsText(Corpus):
    """Documents from the text feature `feature` of split `split` of the tfds dataset `name`.

    Without `feature`, the dataset's feature named "text" is used, or else its only text
    feature.
    """

    def __init__(
        self,
        name: str,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        split: str = "train",
        feature: str | None = None,
    ) -> None:
        import tensorflow_datasets as tfds

        try:
            self._builder = tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir else None)
        except Exception as error:  # tfds raises many types for an unknown or unbuildable name
            # Keep the first line: tfds appends the whole catalogue to "not found".
            reason = (str(error).strip() or type(error).__name__).splitlines()[0]
            where = f" (data dir {os.fspath(data_dir)!r})" if data_dir else ""
            raise InputError(f"tfds dataset {name!r}{where}: {reason}") from error
        if not self._builder.is_prepared():
            raise InputError(
                f"tfds dataset {name!r} is not prepared in {str(self._builder.data_dir)!r}; "
                f"build it first: tfds build {name} --data_dir {os.fspath(data_dir or 'DIR')}"
            )
        info = self._builder.info
        if split not in info.splits:
            raise InputError(
                f"tfds dataset {name!r} has no split {split!r}; it has {list(info.splits)}"
            )
        self.name, self.split = name, split
        self.feature = feature or _text_feature(name, info.features)
        kind = _text_kind(info.features[self.feature]) if self.feature in info.features else None
        if kind is None:
            raise InputError(f"tfds dataset {name!r} has no text feature {self.feature!r}")
        self._presplit = kind == "sentences"

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "source": "tfds",
            "name": self._builder.info.full_name,
            "data_dir": str(self._builder.data_dir),
            "split": self.split,
            "feature": self.feature,
            "num_examples": self._builder.info.splits[self.split].num_examples,
        }

    @property
    def description(self) -> str:
        return f"tfds dataset {self.name!r} (split {self.split!r}, feature {self.feature!r})"

    def __iter__(self) -> Iterator[Document]:
        for value in self._values():
            if self._presplit:
                document = [s for s in (_text(v).strip() for v in value) if s]
            else:
                document = split_sentences(_text(value))
            if document:
                yield document

    def _values(self) -> Iterator[Any]:
        try:
            source = self._builder.as_data_source(self.split)
        except NotImplementedError:  # not stored in a random-access format
            yield from self._values_with_tensorflow()
            return
        for start in range(0, len(source), _READ_BLOCK):
            block = source.__getitems__(range(start, min(start + _READ_BLOCK, len(source))))
            for example in block:
                yield example[self.feature]

    def _values_with_tensorflow(self) -> Iterator[Any]:
        import tensorflow_datasets as tfds

        try:
            import tensorflow  # noqa: F401
        except ImportError as error:
            raise InputError(
                f"tfds dataset {self.name!r} is stored as {self._builder.info.file_format}; "
                "reading it needs TensorFlow (pip install tensorflow-cpu)"
            ) from error
        # Decode only the text: other features (images, audio) would cost time for nothing.
        skip = {name: tfds.decode.SkipDecoding() for name in self._builder.info.features}
        del skip[self.feature]
        dataset = self._builder.as_dataset(self.split, decoders=skip, shuffle_files=False)
        for example in tfds.as_numpy(dataset):
            yield example[self.feature]


def _text_feature(name: str, features: Any) -> str:
    text_features = [key for key, feature in features.items() if _text_kind(feature)]
    if "text" in text_features:
        return "text"
    if len(text_features) == 1:
        return text_features[0]
    raise InputError(
        f"tfds dataset {name!r}: choose its text feature among {text_features or 'none'}"
    )


def _text_kind(feature: Any) -> str | None:
    """The kind of a feature: "text" (Text), "sentences" (Sequence of Text) or None."""
    import tensorflow_datasets as tfds

    if isinstance(feature, tfds.features.Text):
        return "text"
    if isinstance(feature, tfds.features.Sequence) and isinstance(
        feature.feature, tfds.features.Text
    ):
        return "sentences"
    return None


def _text(value: bytes | str) -> str:
    # tfds stores Text as UTF-8; a bad byte costs one character, never the run.
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
