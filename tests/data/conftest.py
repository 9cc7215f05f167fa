"""Data fixtures shared by the data tests: the built-in corpus, a tiny tokenizer trained on it,
and that corpus prepared with it. Each is built once per test session (about 15 s together)."""

from __future__ import annotations

from pathlib import Path

import pytest

from albert_jax.data.corpus import BuiltinCorpus, Document, sentences
from albert_jax.data.prepare import prepare
from albert_jax.data.tokenizer import Tokenizer

TINY_VOCAB_SIZE = 1000


@pytest.fixture(scope="session")
def builtin_documents() -> list[Document]:
    """The built-in corpus, read once."""
    return list(BuiltinCorpus())


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory, builtin_documents) -> Tokenizer:
    """A 1000-piece tokenizer trained on the built-in corpus with ALBERT's recipe."""
    prefix = tmp_path_factory.mktemp("tokenizer") / "tiny"
    return Tokenizer.train(sentences(builtin_documents), TINY_VOCAB_SIZE, output_prefix=prefix)


@pytest.fixture(scope="session")
def tiny_prepared_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer) -> Path:
    """The built-in corpus prepared with `tiny_tokenizer` (two worker processes): about 2000
    training documents and 600k tokens, plus the held-out split."""
    output = tmp_path_factory.mktemp("prepared") / "builtin"
    prepare(BuiltinCorpus(), tiny_tokenizer, output, num_workers=2, progress=False)
    return output
