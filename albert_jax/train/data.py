"""The trainer's data: the config's source as per-process iterators and global batches.

Sources (`data.source`):
- "builtin": the built-in corpus. Its tokenizer is trained on first use and its documents are
  prepared once, both cached (see `cache_dir`) and reused by later runs.
- "synthetic": random tokens. Batch contents depend only on the seed, the step and the row of
  the global batch, never on how many processes read it: the multi-device tests compare
  different meshes and process counts on identical batches, and benchmarks need no corpus.
- any other value: the directory of a dataset made by `albert-jax data prepare`, read with the
  tokenizer at `data.tokenizer`.

Every iterator is a grain `DatasetIterator`, whose state goes into the checkpoints.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path

import grain
import jax
import ml_collections
import numpy as np
from jax.sharding import NamedSharding

from albert_jax.data import pipeline, prepare
from albert_jax.data.corpus import BuiltinCorpus, sentences
from albert_jax.data.pretraining import Vocab
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError
from albert_jax.model.config import AlbertConfig
from albert_jax.train import config as config_lib

log = logging.getLogger(__name__)

# Ids the synthetic source shares with ALBERT tokenizers: <pad> 0, [CLS] 2, [SEP] 3, [MASK] 4.
_PAD, _CLS, _SEP, _MASK, _FIRST_WORD = 0, 2, 3, 4, 5


def cache_dir() -> Path:
    """$ALBERT_JAX_CACHE, else $XDG_CACHE_HOME/albert_jax, else ~/.cache/albert_jax."""
    if os.environ.get("ALBERT_JAX_CACHE"):
        return Path(os.environ["ALBERT_JAX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "albert_jax"


def builtin_dataset(vocab_size: int) -> tuple[Path, Path]:
    """(tokenizer .model, prepared dataset dir) of the built-in corpus, made on first use.

    Keyed by the corpus identity (the Python build it comes from) and the vocabulary size. In a
    multi-process run process 0 makes them while the others wait: the cache must be visible to
    all processes (set ALBERT_JAX_CACHE to shared storage on a multi-host cluster).
    """
    corpus = BuiltinCorpus()
    key = hashlib.sha256(json.dumps(corpus.identity, sort_keys=True).encode()).hexdigest()[:12]
    root = cache_dir() / f"builtin-{key}-vocab{vocab_size}"
    tokenizer_path, dataset_dir = root / "tokenizer.model", root / "documents"
    if jax.process_index() == 0:
        root.mkdir(parents=True, exist_ok=True)
        # Two runs starting at once on one machine: the second waits for the first's files.
        with open(root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not tokenizer_path.exists():
                log.info("training a %d-piece tokenizer on the built-in corpus -> %s", vocab_size,
                         tokenizer_path)
                Tokenizer.train(sentences(corpus), vocab_size, output_prefix=root / "tokenizer")
            if not dataset_dir.exists():
                log.info("preparing the built-in corpus -> %s", dataset_dir)
                prepare.prepare(corpus, Tokenizer.load(tokenizer_path), dataset_dir)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("albert_jax builtin dataset ready")
    return tokenizer_path, dataset_dir


# -- synthetic batches --------------------------------------------------------------------------


class _SyntheticBatch:
    """Step -> this process's rows of that step's global batch of random MLM+SOP examples."""

    def __init__(self, seed: int, stream: int, global_batch: int, rows: tuple[int, int],
                 seq_length: int, num_predictions: int, vocab_size: int):
        self.seed, self.stream, self.global_batch, self.rows = seed, stream, global_batch, rows
        self.seq_length, self.num_predictions, self.vocab_size = seq_length, num_predictions, vocab_size

    def __call__(self, step: int) -> dict[str, np.ndarray]:
        examples = [self._example(step * self.global_batch + row) for row in range(*self.rows)]
        return {name: np.stack([e[name] for e in examples]) for name in examples[0]}

    def _example(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.stream, index])
        S, P = self.seq_length, self.num_predictions
        length = int(rng.integers(max(S // 2, 4), S + 1))  # the rest is padding
        split = int(rng.integers(2, length - 1))  # [CLS] A [SEP] B [SEP]
        tokens = rng.integers(_FIRST_WORD, self.vocab_size, S, dtype=np.int32)
        tokens[[0, split, length - 1]] = (_CLS, _SEP, _SEP)
        tokens[length:] = _PAD
        candidates = np.setdiff1d(np.arange(1, length - 1), [split])
        count = int(rng.integers(1, min(P, len(candidates)) + 1))  # slots past it: weight 0
        positions = np.zeros(P, np.int32)
        positions[:count] = np.sort(rng.choice(candidates, count, replace=False))
        ids = np.where(np.arange(P) < count, tokens[positions], 0).astype(np.int32)
        input_ids = tokens.copy()
        input_ids[positions[:count]] = _MASK
        return {
            "input_ids": input_ids,
            "attention_mask": (np.arange(S) < length).astype(np.int32),
            "token_type_ids": ((np.arange(S) > split) & (np.arange(S) < length)).astype(np.int32),
            "masked_lm_positions": positions,
            "masked_lm_ids": ids,
            "masked_lm_weights": (np.arange(P) < count).astype(np.int32),
            "sentence_order_label": np.int32(rng.integers(2)),
        }


# -- the config's data ------------------------------------------------------------------------------


class PretrainingData:
    """Opens `config.data` once; makes this process's train and held-out batch iterators.

    Raises InputError at once (before any training) when the tokenizer disagrees with the
    model's vocabulary or the dataset was tokenized by another tokenizer.
    """

    def __init__(self, config: ml_collections.ConfigDict, model: AlbertConfig):
        self.config = config
        self.model = model
        self.data_config = config_lib.data_config(config)
        self.source = config.data.source
        if self.source == "synthetic":
            return
        if self.source == "builtin":
            tokenizer_path, dataset_dir = builtin_dataset(model.vocab_size)
        else:
            if not config.data.tokenizer:
                raise InputError("data.source names a prepared dataset: set --config.data.tokenizer "
                                 "to the .model file it was tokenized with")
            tokenizer_path, dataset_dir = Path(config.data.tokenizer), Path(self.source)
        tokenizer = Tokenizer.load(tokenizer_path)
        if tokenizer.vocab_size != model.vocab_size:
            raise InputError(f"tokenizer {str(tokenizer_path)!r} has {tokenizer.vocab_size} pieces but "
                             f"the model's vocab_size is {model.vocab_size}; set "
                             f"--config.model.vocab_size={tokenizer.vocab_size} or use another tokenizer")
        self.vocab = Vocab.from_tokenizer(tokenizer)
        self.documents = {split: prepare.load_documents(dataset_dir, split, tokenizer)
                          for split in prepare.SPLITS}

    def iterator(self, split: str, rows: tuple[int, int]) -> grain.DatasetIterator | None:
        """This process's batches of `split` ("train" or "validation"): rows [start, stop) of
        each global batch. None when the split has no documents."""
        if self.source == "synthetic":
            stream = {prepare.TRAIN_SPLIT: 0, prepare.EVAL_SPLIT: 1}[split]
            make = _SyntheticBatch(self.config.seed, stream, self.config.global_batch_size, rows,
                                   self.config.seq_length, self.data_config.num_prediction_slots,
                                   self.model.vocab_size)
            return iter(grain.MapDataset.range(2**62).map(make).to_iter_dataset())
        documents = self.documents[split]
        if len(documents) == 0:
            return None
        train = split == prepare.TRAIN_SPLIT
        return pipeline.make_pretraining_iterator(
            documents, self.data_config, self.vocab, batch_size=rows[1] - rows[0],
            shard_index=jax.process_index(), shard_count=jax.process_count(),
            worker_count=self.config.data.num_workers if train else 0,
            shuffle_window=self.config.data.shuffle_window)


def global_batch(local: dict[str, np.ndarray], shardings: dict[str, NamedSharding],
                 global_batch_size: int) -> dict[str, jax.Array]:
    """Assembles every process's rows into global arrays sharded over the mesh."""
    return {name: jax.make_array_from_process_local_data(
                shardings[name], np.asarray(local[name], np.int32),
                (global_batch_size,) + np.shape(local[name])[1:])
            for name in shardings}

