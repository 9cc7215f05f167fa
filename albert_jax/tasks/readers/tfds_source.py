"""Examples of a prepared tensorflow-datasets split, with or without TensorFlow.

Datasets prepared as ArrayRecord are read through `as_data_source`, which needs no TensorFlow.
The GLUE, RACE and CoNLL-2003 builders write TFRecord unless built with
`--file_format array_record`; reading TFRecord needs TensorFlow, an optional extra here.
Nothing is downloaded: the dataset must be prepared already.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from albert_jax.errors import InputError

# The extra that brings TensorFlow, named in the error when it is missing.
TF_EXTRA = "pip install 'albert_jax[tf]'"

# Examples fetched per random-access read.
_READ_BLOCK = 256


def tfds_builder(name: str, data_dir: str | os.PathLike[str] | None = None) -> Any:
    """The tfds builder of `name` (e.g. "glue/mnli") in `data_dir` (default: tfds' own)."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=os.fspath(data_dir) if data_dir else None)
    except Exception as error:  # tfds raises many types for an unknown or unbuildable name
        # Keep the first line: tfds appends the whole catalogue to "not found".
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        where = f" (data dir {os.fspath(data_dir)!r})" if data_dir else ""
        raise InputError(f"tfds dataset {name!r}{where}: {reason}") from error


def tfds_examples(builder: Any, split: str) -> Iterator[dict[str, Any]]:
    """The examples of `split`, in the stored order, as numpy values (text as bytes or str)."""
    try:
        source = builder.as_data_source(split)
    except ValueError as error:  # tfds: "Unknown split 'x'. Should be one of [...]."
        raise InputError(f"tfds dataset {dataset_name(builder)!r}: {_first_line(error)}") from error
    except NotImplementedError:  # stored as TFRecord (or not prepared: tfds says the same)
        yield from _examples_with_tensorflow(builder, split)
        return
    for start in range(0, len(source), _READ_BLOCK):
        yield from source.__getitems__(range(start, min(start + _READ_BLOCK, len(source))))


def text(value: Any) -> str:
    """A tfds Text value as str: tfds gives UTF-8 bytes, or str, or either in a 0-d array."""
    if isinstance(value, np.ndarray):
        value = value.item()
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def texts(values: Sequence[Any]) -> tuple[str, ...]:
    """A tfds Sequence(Text) value as a tuple of str."""
    return tuple(text(value) for value in values)


def _examples_with_tensorflow(builder: Any, split: str) -> Iterator[dict[str, Any]]:
    import tensorflow_datasets as tfds

    name = dataset_name(builder)
    try:
        import tensorflow  # noqa: F401
    except ImportError as error:
        if not builder.is_prepared():
            raise _not_prepared(builder) from error
        raise InputError(
            f"tfds dataset {name!r} is stored as {builder.info.file_format.value}; reading it "
            f"needs TensorFlow: {TF_EXTRA} (or rebuild it with --file_format array_record)"
        ) from error
    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
    except AssertionError as error:  # tfds: "could not find data in DIR"
        raise _not_prepared(builder) from error
    except ValueError as error:
        raise InputError(f"tfds dataset {name!r}: {_first_line(error)}") from error
    yield from tfds.as_numpy(dataset)


def dataset_name(builder: Any) -> str:
    """The name as users write it: "glue/mnli", "conll2003"."""
    config = builder.builder_config
    return f"{builder.name}/{config.name}" if config and config.name != builder.name else builder.name


def _not_prepared(builder: Any) -> InputError:
    name = dataset_name(builder)
    return InputError(
        f"tfds dataset {name!r} is not prepared in {str(builder.data_dir)!r}; "
        f"build it first: tfds build {name} --data_dir DIR "
        "(with --file_format array_record it reads without TensorFlow)"
    )


def _first_line(error: Exception) -> str:
    return (str(error).strip() or type(error).__name__).splitlines()[0]
