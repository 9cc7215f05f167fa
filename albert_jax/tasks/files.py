"""Reading the files users hand to task commands, with one-line errors that name them."""

from __future__ import annotations

from albert_jax.errors import InputError


def read_text(path: str) -> str:
    """The UTF-8 text of a local or gs:// file, less any byte order mark (GLUE's MRPC files have one).

    A missing, unreadable or binary file is an InputError.
    """
    from etils import epath  # here, not above: the CLI imports this module to build its parser

    try:
        return epath.Path(path).read_text().removeprefix("\ufeff")
    except FileNotFoundError:
        raise InputError(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise InputError(f"{path} cannot be read: {error.strerror or error}") from None
