"""Errors caused by the user's input: the CLI prints these as one line and exits non-zero."""


class InputError(ValueError):
    """A file, config key or value supplied by the user is wrong; the message names it."""
