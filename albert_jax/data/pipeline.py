"""The pretraining input pipeline: prepared documents in, batches of masked SOP examples out.

Built on grain, with no TensorFlow. The stages, in order:

1. document order: a global shuffle of all document indices, reshuffled every pass
   (grain's `shuffle` + `repeat`); the pass number travels with each index;
2. sharding: process i of n takes positions i, i+n, i+2n, ... of that global order, so
   every pass spreads all documents over the processes without overlap;
3. reading, in this thread or (with `read_options`) in reader threads ahead of use;
4. examples: `pretraining.document_examples` turns each document into its SOP examples,
   masks included, from a generator seeded by (seed, pass, document): nothing depends on
   what was read before, so workers, shards and restarts all agree;
5. a windowed shuffle, because consecutive examples of one long document would otherwise
   share a batch (the original shuffled all its examples after creating them);
6. with `config.packing`, first-fit packing of several examples per row (`data.packing`);
7. batching to the per-process batch, then worker processes or a prefetch thread.

The iterator's state (`get_state`/`set_state`, or orbax through
`grain.checkpoint.CheckpointSave`/`CheckpointRestore`) is a few counters; restoring it
replays exactly the batches an uninterrupted run would have produced, given the same
arguments (worker count included: workers interleave their batches).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grain
import numpy as np
from absl import flags

from albert_jax.data import packing
from albert_jax.data.pretraining import PretrainingDataConfig, Vocab, document_examples
from albert_jax.errors import InputError

Document = Mapping[str, np.ndarray]

_WORKER_FLAG = "grain_enable_multiprocess_worker_profiling"
# Rows the packer fills at once: more leave less padding (measured on the built-in corpus, see
# `packing_report`), at the cost of holding that many rows in memory.
_MIN_PACKING_BINS = 64


class _WithPass:
    """(position in the repeated order, document index) -> (pass, document index)."""

    def __init__(self, num_documents: int):
        self._num_documents = num_documents

    def __call__(self, position: int, document_index: int) -> tuple[int, int]:
        return position // self._num_documents, int(document_index)


class _ReadDocument:
    """(pass, document index) -> (pass, document index, document)."""

    def __init__(self, source: Sequence[Document]):
        self._source = source

    def __call__(self, item: tuple[int, int]) -> tuple[int, int, Document]:
        epoch, index = item
        return epoch, index, self._source[index]


class _DocumentExamples(grain.experimental.FlatMapTransform):
    """(pass, document index, document) -> that document's examples in that pass."""

    def __init__(self, source: Sequence[Document], config: PretrainingDataConfig, vocab: Vocab):
        self._source = source
        self._config = config
        self._vocab = vocab

    def flat_map(self, element: tuple[int, int, Document]) -> list[dict[str, np.ndarray]]:
        epoch, index, document = element
        return document_examples(document, self._source, index, epoch, self._config, self._vocab)


def _default_shard() -> tuple[int, int]:
    import jax  # Only here: the rest of the pipeline runs without initialising JAX.

    return jax.process_index(), jax.process_count()


def make_pretraining_iterator(
    source: Sequence[Document],
    config: PretrainingDataConfig,
    vocab: Vocab,
    *,
    batch_size: int,
    shard_index: int | None = None,
    shard_count: int | None = None,
    worker_count: int = 0,
    num_epochs: int | None = None,
    shuffle_window: int = 1024,
    prefetch: int = 4,
    read_options: grain.ReadOptions | None = None,
) -> grain.DatasetIterator:
    """Returns an iterator over this process's batches of pretraining examples.

    Args:
      source: random access (`len`, `[i]`, picklable) over documents, each a dict with
        int32 `token_ids` (flat) and `sentence_lengths`, e.g. `prepare.load_documents(...)`.
      config: example options; `config.seed` fixes the whole stream.
      vocab: special ids and the word-start table (`Vocab.from_tokenizer(tokenizer)`).
      batch_size: examples per batch in this process (the global batch / process count).
      shard_index, shard_count: which shard of the documents this process reads; both
        default to `jax.process_index()` and `jax.process_count()`.
      worker_count: processes creating examples; 0 creates them in this process.
      num_epochs: passes over the documents; None repeats forever.
      shuffle_window: examples shuffled together after creation (1 turns it off).
      prefetch: batches made ahead of use (per worker when there are workers).
      read_options: grain's document reading threads and buffer; default: no threads.

    Each batch is a dict of int32 numpy arrays: `input_ids`, `attention_mask`,
    `token_type_ids` [batch, max_seq_length]; `masked_lm_positions`, `masked_lm_ids`,
    `masked_lm_weights` [batch, P] (P = max_predictions_per_seq, twice that with
    `do_permutation`; unused slots have weight 0); `sentence_order_label` [batch]. With
    `config.packing`, rows hold several examples and carry the fields of
    `pretraining.example_shapes` instead.
    Call `close()` on the iterator when done if it has workers.
    """
    if shard_index is None or shard_count is None:
        if shard_index is not None or shard_count is not None:
            raise InputError("give both shard_index and shard_count, or neither")
        shard_index, shard_count = _default_shard()
    if not 0 <= shard_index < shard_count:
        raise InputError(f"shard_index {shard_index} is not in [0, {shard_count})")
    if batch_size < 1 or worker_count < 0 or shuffle_window < 1 or prefetch < 0:
        raise InputError(
            f"need batch_size >= 1, worker_count >= 0, shuffle_window >= 1 and prefetch >= 0;"
            f" got {batch_size}, {worker_count}, {shuffle_window}, {prefetch}"
        )
    num_documents = len(source)
    if num_documents == 0:
        raise InputError("the pretraining source has no documents")

    order = (
        grain.MapDataset.range(num_documents)
        .shuffle(seed=config.seed)
        .repeat(num_epochs)
        .map_with_index(_WithPass(num_documents))
    )
    documents = order[shard_index::shard_count].map(_ReadDocument(source))
    # Reading local ArrayRecord in this thread beats handing it to reader threads (measured on
    # 2 cores); remote storage wants `grain.ReadOptions(num_threads=...)` to hide latency.
    read_options = read_options or grain.ReadOptions(num_threads=0)
    examples: grain.IterDataset[Any] = grain.experimental.FlatMapIterDataset(
        documents.to_iter_dataset(read_options), _DocumentExamples(source, config, vocab)
    )
    if shuffle_window > 1:
        examples = grain.experimental.WindowShuffleIterDataset(examples, window_size=shuffle_window, seed=config.seed)
    if config.packing:
        examples = packing.pack(examples, config, vocab.pad_id, num_packing_bins=max(batch_size, _MIN_PACKING_BINS))
    batches = examples.batch(batch_size, drop_remainder=True)
    if worker_count > 0:
        # grain 0.2.18 reads one of its absl flags when starting workers and fails unless flags
        # were parsed, which they are not outside `absl.app` (google/grain#1355). Marking just
        # that flag as given (at its default) leaves every other flag, and the caller's own
        # parsing, alone; grain does the same for the flags it hands to its workers.
        flags.FLAGS[_WORKER_FLAG].present = True
        batches = batches.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=worker_count, per_worker_buffer_size=max(prefetch, 1))
        )
    elif prefetch > 0:
        batches = grain.experimental.ThreadPrefetchIterDataset(batches, prefetch_buffer_size=prefetch)
    return iter(batches)
