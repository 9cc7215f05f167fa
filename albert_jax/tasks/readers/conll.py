"""Token tagging (NER, chunking, POS) from CoNLL-style files or tensorflow-datasets `conll2003`.

A CoNLL-style file has one word per line followed by more fields, split by whitespace: the first
field is the word and the LAST is its tag (CoNLL-2003: `word POS chunk NER`). Blank lines end
sentences; `-DOCSTART-` lines end them too and are skipped. Every word line of a file has as
many fields as its first one. A file of one field per line holds untagged words (prediction
input). Sentences keep file order; guid "<split>-<n>" counts them from 0.

The tag set is read from the training file, sorted as strings (class id i is `labels[i]`); a tag
in the dev or test file must occur in the training file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from etils import epath

from albert_jax.errors import InputError
from albert_jax.tasks.examples import TaggedExample
from albert_jax.tasks.readers.base import ExampleReader, shown
from albert_jax.tasks.readers.files import PathLike, text_lines
from albert_jax.tasks.readers.tfds_source import texts, tfds_builder, tfds_examples

_DOCUMENT_START = "-DOCSTART-"


class ConllFilesReader(ExampleReader[TaggedExample]):
    """Sentences from `train_file`, `dev_file` and `test_file` (a split exists when its file is
    given). Train and dev files must be tagged; the test file may be words only.

    `labels` fixes the tag set instead of reading it from the training file.
    """

    def __init__(
        self,
        *,
        train_file: PathLike | None = None,
        dev_file: PathLike | None = None,
        test_file: PathLike | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        files = {"train": train_file, "dev": dev_file, "test": test_file}
        self.files = {split: epath.Path(path) for split, path in files.items() if path}
        if not self.files:
            raise InputError("no data files given: set train_file, dev_file or test_file")
        if labels is None and "train" not in self.files:
            raise InputError("a tagging task needs train_file (its tags are the tag set)")
        self.splits = tuple(self.files)
        self.name = "CoNLL-style files"
        self._labels = tuple(map(str, labels)) if labels is not None else None
        self._tag_source = "the tags of the training file" if labels is None else "the given labels"
        self._train: list[TaggedExample] | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        if self._labels is None:
            self._labels = tuple(sorted({tag for example in self._train_examples() for tag in example.tags or ()}))
        return self._labels

    def _read(self, split: str) -> list[TaggedExample]:
        if split == "train":
            return self._train_examples()
        return self._examples(split, known_tags=self.labels)

    def _train_examples(self) -> list[TaggedExample]:
        if self._train is None:
            self._train = self._examples("train", known_tags=self._labels)
        return self._train

    def _examples(self, split: str, known_tags: tuple[str, ...] | None) -> list[TaggedExample]:
        path = self.files[split]
        examples = []
        tagged = None
        for n, (lines, words, tags) in enumerate(_sentences(path)):
            tagged = tags is not None
            if tags is not None and known_tags is not None:
                for line, tag in zip(lines, tags):
                    if tag not in known_tags:
                        raise InputError(f"{path}:{line}: tag {shown(tag)} is not in {self._tag_source}")
            examples.append(TaggedExample(f"{split}-{n}", words, tags))
        if not examples:
            raise InputError(f"{path}: no sentences")
        if not tagged and split != "test":
            raise InputError(f"{path}: one field per line, so no tags; the tag must be the last field")
        return examples


class ConllTfdsReader(ExampleReader[TaggedExample]):
    """Sentences from a tfds tagging dataset (default `conll2003`, its `ner` tags), prepared in
    `data_dir` (default: tfds' data dir); tag ids become names through the dataset's feature
    info. Splits "train", "dev", "test" as tfds names them. Sentences come in the stored order
    (tfds hashes it), not the source files'; guid "<split>-<n>". TFRecord needs TensorFlow."""

    splits = ("train", "dev", "test")

    def __init__(
        self,
        name: str = "conll2003",
        *,
        data_dir: PathLike | None = None,
        words_feature: str = "tokens",
        tags_feature: str = "ner",
    ) -> None:
        self.dataset, self.data_dir = name, data_dir
        self.words_feature, self.tags_feature = words_feature, tags_feature
        self.name = f"tfds {name}"
        self._labels: tuple[str, ...] | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        if self._labels is None:
            self._labels = self._tag_names(tfds_builder(self.dataset, self.data_dir))
        return self._labels

    def _read(self, split: str) -> list[TaggedExample]:
        builder = tfds_builder(self.dataset, self.data_dir)
        names = self._tag_names(builder)
        examples = []
        for n, record in enumerate(tfds_examples(builder, split)):
            words = texts(record[self.words_feature])
            tags = tuple(names[int(tag)] for tag in record[self.tags_feature])
            if len(words) != len(tags):
                raise InputError(f"{self.name} {split} example {n}: {len(words)} words but {len(tags)} tags")
            # tfds' CoNLL builder also stores an empty sentence when a file ends in a blank line.
            if words:
                examples.append(TaggedExample(f"{split}-{len(examples)}", words, tags))
        return examples

    def _tag_names(self, builder) -> tuple[str, ...]:
        features = builder.info.features
        for feature in (self.words_feature, self.tags_feature):
            if feature not in features:
                raise InputError(f"{self.name} has no feature {feature!r}; it has {', '.join(features)}")
        tags = features[self.tags_feature]
        names = getattr(getattr(tags, "feature", None), "names", None)
        if names is None:
            raise InputError(f"{self.name}: feature {self.tags_feature!r} is not a sequence of class labels")
        return tuple(names)


def _sentences(path: epath.Path) -> Iterator[tuple[list[int], tuple[str, ...], tuple[str, ...] | None]]:
    """(line numbers, words, tags or None) for each sentence of a CoNLL-style file."""
    width = None  # fields per word line, fixed by the file's first word line
    first_line = 0
    lines: list[int] = []
    rows: list[list[str]] = []
    for number, line in enumerate(text_lines(path), start=1):
        fields = line.split()
        if fields and fields[0] != _DOCUMENT_START:
            if width is None:
                width, first_line = len(fields), number
            elif len(fields) != width:
                raise InputError(
                    f"{path}:{number}: {len(fields)} fields; the file's word lines have {width} "
                    f"(as line {first_line})"
                )
            lines.append(number)
            rows.append(fields)
        elif rows:
            yield _sentence(lines, rows)
            lines, rows = [], []
    if rows:
        yield _sentence(lines, rows)


def _sentence(lines: list[int], rows: list[list[str]]) -> tuple[list[int], tuple[str, ...], tuple[str, ...] | None]:
    words = tuple(row[0] for row in rows)
    tags = tuple(row[-1] for row in rows) if len(rows[0]) > 1 else None
    return lines, words, tags
