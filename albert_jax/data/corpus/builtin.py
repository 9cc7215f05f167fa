"""The built-in corpus: English prose from this Python installation's own documentation.

It exists wherever albert_jax installs and needs no download, so the tiny pretraining config and
the tests can run anywhere. Its text is read at run time, never stored in the repository:

1. docstrings of the standard library's Python sources, read with `ast` (nothing is imported,
   so modules with import side effects such as `antigravity` or `this` are harmless);
2. docstrings of a fixed list of C modules, which have no source to parse;
3. the pydoc topics (`pydoc_data.topics`): the language reference as plain text.

Only prose paragraphs are kept: code, doctests, tables and headings are dropped. The order is
fixed for a given Python build; another Python version gives a somewhat different corpus.
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import inspect
import os
import re
import sys
import sysconfig
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from albert_jax.data.corpus.base import Corpus, Document
from albert_jax.data.corpus.splitter import split_sentences

# Test suites hold docstrings like "Test that it works"; installed packages are not Python's.
_SKIPPED_DIRECTORIES = frozenset(
    {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}
)

# C modules whose documentation exists only in the compiled module. Importing them has no side
# effects; most are loaded in every interpreter anyway.
_C_MODULES = (
    "builtins", "sys", "math", "cmath", "itertools", "time", "gc", "array", "binascii", "zlib",
    "select", "mmap", "_io", "_collections", "_functools", "_operator", "_struct",
)  # fmt: skip

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# reST heading underlines ("*****", "-----") and table borders ("=== ===").
_RULE = re.compile(r"^\s*([=\-*~^+#])\1{2,}[=\-*~^+# ]*$", re.MULTILINE)
_MIN_PROSE_WORDS = 3
# Share of letters and spaces below which a paragraph is a signature, table or formula.
_MIN_LETTER_SHARE = 0.8


class BuiltinCorpus(Corpus):
    """Documents from Python's own documentation: one per module's top level, per class, per
    pydoc topic."""

    @property
    def identity(self) -> dict[str, Any]:
        return {"source": "builtin", "python": sys.version}

    @property
    def description(self) -> str:
        return "the built-in corpus"

    def __iter__(self) -> Iterator[Document]:
        for path in _stdlib_sources():
            yield from _source_documents(path)
        for name in _C_MODULES:
            yield from _module_object_documents(name)
        from pydoc_data.topics import topics

        for name in sorted(topics):
            document = prose_sentences(topics[name])
            if document:
                yield document


def prose_sentences(text: str) -> list[str]:
    """The sentences of the prose paragraphs of `text` (a docstring or a pydoc topic)."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(inspect.cleandoc(text)):
        lines = paragraph.splitlines()
        # Indented paragraphs are code, examples and argument tables; rules mark headings.
        if not lines or lines[0][:1].isspace() or _RULE.search(paragraph):
            continue
        if any(line.lstrip().startswith((">>>", "...", "$ ")) for line in lines):
            continue
        joined = " ".join(line.strip() for line in lines)
        letters = sum(char.isalpha() or char == " " for char in joined)
        if len(joined.split()) < _MIN_PROSE_WORDS or letters < _MIN_LETTER_SHARE * len(joined):
            continue
        sentences.extend(split_sentences(joined))
    return sentences


def _stdlib_sources() -> Iterator[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in _SKIPPED_DIRECTORIES)
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(directory, name)


def _source_documents(path: Path) -> Iterator[Document]:
    """A document for the module's top level (its docstring and its functions'), then one per
    top-level class with its methods, in source order."""
    try:
        with warnings.catch_warnings(), _collector_paused():
            warnings.simplefilter("ignore")  # invalid escapes and the like in old sources
            tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return  # e.g. lib2to3 fixtures in Python 2 syntax: not ours to fix
    module = _docstring_sentences(tree)
    classes = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            module.extend(_docstring_sentences(node))
        elif isinstance(node, ast.ClassDef):
            classes.append(_class_sentences(node))
    for document in (module, *classes):
        if document:
            yield document


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python 3.11.7 and older (CPython gh-106905) fail `ast.parse` with "SystemError: AST
    constructor recursion depth mismatch" when a garbage collection during it runs a finalizer that
    parses too. 3.11's traceback formatting does, e.g. asyncio logging a future's unretrieved error
    (orbax leaves some after a failed write). Without the collector, no Python code runs inside."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _class_sentences(node: ast.ClassDef) -> Document:
    sentences = _docstring_sentences(node)
    for child in node.body:
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            sentences.extend(_docstring_sentences(child))
    return sentences


def _docstring_sentences(node: ast.AST) -> list[str]:
    docstring = ast.get_docstring(node)  # type: ignore[arg-type]
    return prose_sentences(docstring) if docstring else []


def _module_object_documents(module_name: str) -> Iterator[Document]:
    """Like `_source_documents`, for a compiled module: its own functions, then its classes."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return  # not built into this Python
    top = prose_sentences(module.__doc__ or "")
    classes = []
    # Only what the module defines itself, as it was at start-up: hooks can be swapped at run
    # time (pytest replaces sys.unraisablehook; sys keeps the original as __unraisablehook__),
    # and the corpus must not depend on the process.
    namespace = vars(module)
    for name, value in sorted(namespace.items()):
        if name.startswith("_"):
            continue
        value = namespace.get(f"__{name}__", value)
        if inspect.isclass(value) and value.__module__.lstrip("_") == module_name.lstrip("_"):
            classes.append(_object_sentences(value))
        elif inspect.isbuiltin(value) and value.__self__ is module:
            top.extend(prose_sentences(value.__doc__ or ""))
    for document in (top, *classes):
        if document:
            yield document


def _object_sentences(cls: type) -> Document:
    sentences = prose_sentences(cls.__doc__ or "")
    # Dunder methods repeat one line per class ("Return self==value."); skip them.
    for name, value in sorted(vars(cls).items()):
        if not name.startswith("_") and isinstance(getattr(value, "__doc__", None), str):
            sentences.extend(prose_sentences(value.__doc__))
    return sentences
