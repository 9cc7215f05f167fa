"""The built-in corpus as a ready dataset: its tokenizer and prepared documents, made on first use.

Both are cached (see `cache_dir`) and reused by later runs, keyed by the corpus identity (the
Python build it comes from) and the vocabulary size.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path

from albert_jax.data import prepare
from albert_jax.data.corpus import BuiltinCorpus, sentences
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError

log = logging.getLogger(__name__)

# The held-out share of the built-in corpus's ~2,100 documents. `prepare`'s default 1%, meant
# for large corpora, held out 28 here, one of them half the held-out tokens: too few for the
# SOP and MLM accuracies the embedded default reports.
EVAL_FRACTION = 0.05


def cache_dir() -> Path:
    """$ALBERT_JAX_CACHE, else $XDG_CACHE_HOME/albert_jax, else ~/.cache/albert_jax."""
    if os.environ.get("ALBERT_JAX_CACHE"):
        return Path(os.environ["ALBERT_JAX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "albert_jax"


def builtin_dataset(vocab_size: int) -> tuple[Path, Path]:
    """(tokenizer .model, prepared dataset dir) of the built-in corpus, made on first use.

    In a multi-process run process 0 makes them while the others wait: the cache must be
    visible to all processes (set ALBERT_JAX_CACHE to shared storage on a multi-host cluster).
    """
    import jax  # only here: the rest of `albert_jax.data` runs without initialising JAX

    corpus = BuiltinCorpus()
    identity = {**corpus.identity, "eval_fraction": EVAL_FRACTION}
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    root = cache_dir() / f"builtin-{key}-vocab{vocab_size}"
    tokenizer_path, dataset_dir = root / "tokenizer.model", root / "documents"
    if jax.process_index() == 0:
        try:
            root.mkdir(parents=True, exist_ok=True)
            lock = open(root / ".lock", "w")
        except OSError as error:
            raise InputError(f"cannot write the cache {str(root)!r} ({error.strerror}); set "
                             "ALBERT_JAX_CACHE to a writable directory") from None
        # Two runs starting at once on one machine: the second waits for the first's files.
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not tokenizer_path.exists():
                log.info("training a %d-piece tokenizer on the built-in corpus -> %s", vocab_size,
                         tokenizer_path)
                try:
                    Tokenizer.train(sentences(corpus), vocab_size, output_prefix=root / "tokenizer")
                except InputError as error:
                    # Nothing made: leave no folder holding only the lock.
                    (root / ".lock").unlink(missing_ok=True)
                    with contextlib.suppress(OSError):
                        root.rmdir()
                    raise InputError(
                        f"the built-in corpus (data.source=builtin), a small corpus to try albert_jax "
                        f"on, cannot make a {vocab_size}-piece tokenizer ({error}): set "
                        "--config.data.source to a dataset made by `albert-jax data prepare` and "
                        "--config.data.tokenizer to its .model, or lower --config.model.vocab_size"
                    ) from None
            if not dataset_dir.exists():
                log.info("preparing the built-in corpus -> %s", dataset_dir)
                prepare.prepare(corpus, Tokenizer.load(tokenizer_path), dataset_dir,
                                eval_fraction=EVAL_FRACTION)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("albert_jax builtin dataset ready")
    return tokenizer_path, dataset_dir
