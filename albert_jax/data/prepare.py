"""Tokenize a corpus once into a tensorflow-datasets dataset of documents (ArrayRecord).

Each record is one document: `token_ids` (int32, the sentences' ids end to end) and
`sentence_lengths` (int32, ids per sentence, all positive, summing to the length of
`token_ids`). Documents without tokens are dropped. A document goes to the held-out split
`validation` when a hash of its text falls under `eval_fraction`, so the split does not depend
on the corpus order, and duplicate documents never straddle the two splits.

The files are written straight in the tfds folder layout (shards, then `dataset_info.json` via
`tfds.core.DatasetInfo`) instead of through a `GeneratorBasedBuilder`: the builder's writer
buffers every example of a split before it shards (up to 1 GB in memory, then on disk), and it
runs in one process. Here documents stream through a pool of tokenizer processes, shards are
written in corpus order as results arrive, and memory stays flat whatever the corpus size.
`tfds.builder_from_directory(DIR)` reads the result like any prepared tfds dataset, and so does
`documents.load_documents`, without TensorFlow.

Interruptions: the run builds `DIR.partial` and renames it to `DIR` when complete. Its first
act is to write `progress.json` there, which marks the folder as a run's own: a `DIR.partial`
without it (another program's, or a typo away from one) is refused, never resumed or removed.
Whenever a shard fills, all open shards are closed and `progress.json` records how many source
documents are done; a rerun with the same source, tokenizer and settings resumes from there and
overwrites nothing that was finished, so no document is stored twice.

To Cloud Storage (`gs://`), where nothing can be renamed or appended to, the dataset is prepared
(and resumed) in a local staging folder under the albert_jax cache, then uploaded with
`dataset_info.json` last: until that object exists the upload is unfinished, and a rerun
uploads again.

Bad input (a corpus without text, a file that turns out corrupt halfway) raises InputError and
removes `DIR.partial` unless it holds documents from an earlier, interrupted run: fixing the
input changes the corpus identity, so what this run wrote could never be resumed anyway.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from array_record.python import array_record_module
from etils import epath
from tqdm import tqdm

from albert_jax import storage
from albert_jax.data.corpus import Corpus, Document
from albert_jax.data.documents import (
    DATASET_NAME,
    EVAL_SPLIT,
    FORMAT_VERSION,
    SPLITS,
    TRAIN_SPLIT,
    DocumentSource,
    document_features,
)
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError

log = logging.getLogger(__name__)


_FILE_FORMAT = "array_record"
_FILENAME_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}"
# One record per chunk, as tfds writes ArrayRecord: any record is read without its neighbours.
_ARRAY_RECORD_OPTIONS = "group_size:1"
_PROGRESS_FILE = "progress.json"
# In the progress file: whose it is. Only a folder whose progress file says so is ours to touch.
_WRITTEN_BY = "albert-jax data prepare"
# Written last: a dataset in an object store is complete once this object exists.
_COMPLETE_MARKER = "dataset_info.json"
# The ArrayRecord writer keeps ~50 bytes of index per record until its shard closes; this caps
# that at ~10 MB when documents are tiny.
_MAX_SHARD_RECORDS = 200_000


@dataclasses.dataclass(frozen=True)
class PrepareSummary:
    """What `prepare` wrote: documents and tokens per split, documents dropped as empty."""

    output_dir: Path
    documents: dict[str, int]
    tokens: dict[str, int]
    dropped_documents: int


def prepare(
    source: Corpus,
    tokenizer: Tokenizer,
    output_dir: str | os.PathLike[str],
    *,
    eval_fraction: float = 0.01,
    num_workers: int | None = None,
    shard_bytes: int = 128 << 20,
    chunk_chars: int = 1 << 20,
    progress: bool = True,
) -> PrepareSummary:
    """Tokenizes the documents of `source` into a tfds dataset in `output_dir`.

    Args:
      source: the corpus.
      tokenizer: its fingerprint and vocabulary size are stored with the data.
      output_dir: must not exist, unless it holds this very preparation (then nothing is done).
        Nor may `output_dir.partial`, unless an interrupted run of `prepare` left it.
      eval_fraction: expected share of documents in the held-out split.
      num_workers: tokenizer processes; `None` means one per core, 0 tokenizes in this process.
        Workers are spawned, so a calling script needs the `if __name__ == "__main__":` guard.
      shard_bytes: size at which a shard is closed (and the run can resume from there).
      chunk_chars: text handed to a worker at a time; the memory held in flight is about
        `2 * num_workers * chunk_chars` several times over.
      progress: show a progress bar on stderr.

    Raises:
      InputError: bad settings, an output that is not ours to write, or a corpus that is
        unreadable or holds no text.
    """
    if not 0.0 <= eval_fraction < 1.0:
        raise InputError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    if num_workers is not None and num_workers < 0:
        raise InputError(f"num_workers must be 0 or more, got {num_workers}")
    settings = {
        "format_version": FORMAT_VERSION,
        "source": source.identity,
        "tokenizer_fingerprint": tokenizer.fingerprint,
        "eval_fraction": eval_fraction,
    }
    if not storage.is_local(output_dir):
        output_dir = epath.Path(output_dir)
        if (output_dir / _COMPLETE_MARKER).exists():
            return _existing(output_dir, settings)
        staged = prepare(source, tokenizer, _staging_dir(output_dir), eval_fraction=eval_fraction,
                         num_workers=num_workers, shard_bytes=shard_bytes, chunk_chars=chunk_chars,
                         progress=progress)
        _upload(staged.output_dir, output_dir)
        return dataclasses.replace(staged, output_dir=output_dir)
    output_dir = Path(output_dir)
    if output_dir.exists():
        return _existing(output_dir, settings)
    partial = output_dir.with_name(output_dir.name + ".partial")
    state = _Progress.resume_or_start(partial, settings)
    if num_workers is None:
        num_workers = _available_cores()

    writers = {split: _SplitWriter(partial, split, state.shards[split]) for split in SPLITS}
    # Resuming: the source yields the same documents again; skip those already stored.
    documents = itertools.islice(iter(source), state.done.source_documents, None)
    try:
        with (
            _ChunkRunner(num_workers, tokenizer, eval_fraction) as run,
            tqdm(
                desc=f"prepare {output_dir.name}",
                unit=" docs",
                initial=state.done.source_documents,
                disable=not progress,
            ) as bar,
        ):
            for result in run(_chunks(documents, chunk_chars)):
                for split, records in result.records.items():
                    for record in records:
                        writers[split].write(record)
                state.add(result.counts)
                bar.update(result.counts.source_documents)
                train = writers[TRAIN_SPLIT]
                if train.pending_bytes >= shard_bytes or train.pending_records >= _MAX_SHARD_RECORDS:
                    state.checkpoint(writers)
        state.checkpoint(writers)
        _refuse_if_empty(source, state.done)
    except InputError:
        if not state.inherited_documents:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    _finish(partial, output_dir, state, tokenizer, settings)
    if state.done.documents[EVAL_SPLIT] == 0:
        log.warning("the held-out split is empty: the corpus is too small for eval_fraction")
    return PrepareSummary(output_dir, state.done.documents, state.done.tokens, state.done.dropped)


# ---------------------------------------------------------------------------------------------
# Tokenizing chunks of documents, in worker processes.


@dataclasses.dataclass
class _Counts:
    """Source documents read, documents dropped as empty, documents and tokens per split."""

    source_documents: int = 0
    dropped: int = 0
    documents: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    tokens: dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(SPLITS, 0))

    def add(self, other: _Counts) -> None:
        self.source_documents += other.source_documents
        self.dropped += other.dropped
        for split in SPLITS:
            self.documents[split] += other.documents[split]
            self.tokens[split] += other.tokens[split]


@dataclasses.dataclass
class _ChunkResult:
    records: dict[str, list[bytes]]
    counts: _Counts


_worker: dict[str, Any] = {}


def _init_worker(tokenizer: Tokenizer, eval_fraction: float) -> None:
    _worker.update(tokenizer=tokenizer, eval_fraction=eval_fraction, features=document_features())


def _init_pool_worker(tokenizer: Tokenizer, eval_fraction: float) -> None:
    # Ctrl-C reaches the whole process group. The parent stops the run and shuts the pool
    # down; a worker that took the KeyboardInterrupt too would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _init_worker(tokenizer, eval_fraction)


def _tokenize_chunk(documents: list[Document]) -> _ChunkResult:
    tokenizer: Tokenizer = _worker["tokenizer"]
    features = _worker["features"]
    # One batch call per chunk: SentencePiece's per-call overhead dominates short sentences.
    ids = iter(tokenizer.encode_batch([s for document in documents for s in document]))
    result = _ChunkResult({split: [] for split in SPLITS}, _Counts(len(documents)))
    for document in documents:
        sentences = [sentence for sentence in itertools.islice(ids, len(document)) if sentence]
        if not sentences:
            result.counts.dropped += 1
            continue
        split = EVAL_SPLIT if _held_out(document, _worker["eval_fraction"]) else TRAIN_SPLIT
        token_ids = np.fromiter(itertools.chain.from_iterable(sentences), dtype=np.int32)
        lengths = np.array([len(sentence) for sentence in sentences], dtype=np.int32)
        record = {"token_ids": token_ids, "sentence_lengths": lengths}
        result.records[split].append(features.serialize_example(record))
        result.counts.documents[split] += 1
        result.counts.tokens[split] += len(token_ids)
    return result


def _held_out(document: Document, eval_fraction: float) -> bool:
    digest = hashlib.blake2b("\n".join(document).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") < eval_fraction * 2.0**64


def _chunks(documents: Iterable[Document], chunk_chars: int) -> Iterator[list[Document]]:
    chunk: list[Document] = []
    size = 0
    for document in documents:
        chunk.append(document)
        size += sum(len(sentence) for sentence in document)
        if size >= chunk_chars:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _ChunkRunner:
    """Context manager giving `run(chunks) -> results in order`, over a process pool.

    At most two chunks per worker are in flight, so a fast reader cannot fill memory.
    """

    def __init__(self, num_workers: int, tokenizer: Tokenizer, eval_fraction: float) -> None:
        self._num_workers = num_workers
        self._initargs = (tokenizer, eval_fraction)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> Callable[[Iterable[list[Document]]], Iterator[_ChunkResult]]:
        if self._num_workers == 0:
            _init_worker(*self._initargs)
        else:
            # spawn, not fork: the parent may hold threads (tfds, jax) that fork would break.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self._num_workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_pool_worker,
                initargs=self._initargs,
            )
        return self._run

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, chunks: Iterable[list[Document]]) -> Iterator[_ChunkResult]:
        if self._pool is None:
            yield from map(_tokenize_chunk, chunks)
            return
        pending: collections.deque[concurrent.futures.Future[_ChunkResult]] = collections.deque()
        for chunk in chunks:
            pending.append(self._pool.submit(_tokenize_chunk, chunk))
            if len(pending) >= 2 * self._num_workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------------------------------------
# Shards, progress and the finished dataset.


def _shard_name(split: str, index: int) -> str:
    return f"{DATASET_NAME}-{split}.{_FILE_FORMAT}-{index:05d}"


class _SplitWriter:
    """Appends records to the numbered ArrayRecord shards of one split."""

    def __init__(self, directory: Path, split: str, shards: list[dict[str, int]]) -> None:
        self._directory = directory
        self._split = split
        self._shards = shards  # finished shards, {"examples": n, "bytes": b}: appended to
        self._writer: Any = None
        self.pending_records = 0
        self.pending_bytes = 0

    def write(self, record: bytes) -> None:
        if self._writer is None:
            self._writer = array_record_module.ArrayRecordWriter(
                os.fspath(self._path(temporary=True)), _ARRAY_RECORD_OPTIONS
            )
        self._writer.write(record)
        self.pending_records += 1
        self.pending_bytes += len(record)

    def close_shard(self) -> None:
        """Finishes the open shard, if any; it then counts as done."""
        if self._writer is None:
            return
        self._writer.close()
        os.replace(self._path(temporary=True), self._path())
        self._shards.append({"examples": self.pending_records, "bytes": self.pending_bytes})
        self._writer, self.pending_records, self.pending_bytes = None, 0, 0

    def _path(self, temporary: bool = False) -> Path:
        name = _shard_name(self._split, len(self._shards))
        return self._directory / (name + ".tmp" if temporary else name)


class _Progress:
    """The resumable state of a run, kept in `DIR.partial/progress.json`."""

    def __init__(self, directory: Path, settings: dict[str, Any], saved: dict[str, Any]) -> None:
        self.directory = directory
        self.settings = settings
        self.shards: dict[str, list[dict[str, int]]] = saved.get("shards", {s: [] for s in SPLITS})
        self.done = _Counts(**saved["counts"]) if saved else _Counts()
        # Documents that earlier runs stored: not this run's to throw away.
        self.inherited_documents = sum(self.done.documents.values())
        # Counted since the last checkpoint: durable only with the shards they went to.
        self._pending = _Counts()

    @classmethod
    def resume_or_start(cls, directory: Path, settings: dict[str, Any]) -> _Progress:
        """Resumes the run in `directory` if it has these settings; else starts afresh there.

        Raises InputError if `directory` is not a run's own, or cannot be created.
        """
        saved = _own_progress(directory)
        if saved.get("settings") == _jsonable(settings):
            log.info(
                "resuming %s after %d documents", directory, saved["counts"]["source_documents"]
            )
        else:
            if saved:
                log.warning("%s is from a run with other settings; starting over", directory)
                shutil.rmtree(directory)
            saved = {}
        try:
            directory.mkdir(parents=True, exist_ok=True)
            state = cls(directory, settings, saved)
            state._save()  # marks the folder as ours before anything else goes in
        except OSError as error:
            raise InputError(f"cannot write {str(directory)!r}: {error.strerror}") from error
        # Anything not recorded as finished belongs to an interrupted shard or finish.
        finished = {_PROGRESS_FILE} | {
            _shard_name(split, i) for split in SPLITS for i in range(len(state.shards[split]))
        }
        for path in directory.iterdir():
            if path.name not in finished:
                path.unlink()
        return state

    def add(self, counts: _Counts) -> None:
        self._pending.add(counts)

    def checkpoint(self, writers: dict[str, _SplitWriter]) -> None:
        """Closes every open shard and records them, with the documents they hold, as done."""
        for writer in writers.values():
            writer.close_shard()
        self.done.add(self._pending)
        self._pending = _Counts()
        self._save()

    def _save(self) -> None:
        _write_json_atomically(
            self.directory / _PROGRESS_FILE,
            {
                "written_by": _WRITTEN_BY,
                "settings": self.settings,
                "shards": self.shards,
                "counts": dataclasses.asdict(self.done),
            },
        )


def _own_progress(directory: Path) -> dict[str, Any]:
    """The saved progress in `directory`; {} if there is none yet (no folder, or an empty one).

    Raises InputError if `directory` holds anything else: it is not ours to resume or remove.
    """
    try:
        if not os.path.lexists(directory) or (directory.is_dir() and not any(directory.iterdir())):
            return {}
        saved = json.loads((directory / _PROGRESS_FILE).read_bytes())
    except (OSError, ValueError):
        saved = None
    if not (isinstance(saved, dict) and saved.get("written_by") == _WRITTEN_BY):
        raise InputError(
            f"{str(directory)!r} exists and was not left by an interrupted "
            "`albert-jax data prepare`; remove it or choose another output directory"
        )
    return saved


def _refuse_if_empty(source: Corpus, counts: _Counts) -> None:
    """Raises InputError if `source` gave no document with tokens: nothing to train on."""
    if sum(counts.documents.values()):
        return
    if not counts.source_documents:
        raise InputError(f"{source.description} holds no documents (no line of text)")
    raise InputError(
        f"{source.description} holds no text: its {counts.source_documents} document(s) "
        "all tokenize to nothing"
    )


def _finish(
    partial: Path,
    output_dir: Path,
    state: _Progress,
    tokenizer: Tokenizer,
    settings: dict[str, Any],
) -> None:
    """Writes the tfds metadata into the partial directory and renames it into place."""
    template = tfds.core.ShardedFileTemplate(
        data_dir=tfds.core.Path(partial),
        template=_FILENAME_TEMPLATE,
        dataset_name=DATASET_NAME,
        filetype_suffix=_FILE_FORMAT,
    )
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[shard["examples"] for shard in state.shards[split]],
            num_bytes=sum(shard["bytes"] for shard in state.shards[split]),
            filename_template=template.replace(split=split),
        )
        for split in SPLITS
    ]
    metadata = {
        **settings,
        "tokenizer_vocab_size": tokenizer.vocab_size,
        "documents": state.done.documents,
        "tokens": state.done.tokens,
        "dropped_documents": state.done.dropped,
    }
    info = tfds.core.DatasetInfo(
        builder=tfds.core.DatasetIdentity(
            name=DATASET_NAME,
            version=tfds.core.Version("1.0.0"),
            data_dir=os.fspath(output_dir),
            module_name="",
        ),
        features=document_features(),
        description="Tokenized documents for ALBERT pretraining, written by albert_jax.",
        metadata=tfds.core.MetadataDict(_jsonable(metadata)),
    )
    info.set_file_format(_FILE_FORMAT)
    info.set_splits(tfds.core.SplitDict(split_infos))
    info.write_to_directory(tfds.core.Path(partial))
    try:
        os.rename(partial, output_dir)
    except OSError as error:
        raise InputError(
            f"cannot move the finished dataset from {str(partial)!r} to {str(output_dir)!r}: "
            f"{error.strerror}"
        ) from error
    # Until here a rerun resumes from the progress file; from here it finds the finished dir.
    (output_dir / _PROGRESS_FILE).unlink()


def _staging_dir(output_dir: epath.Path) -> Path:
    """The local folder where a dataset bound for `output_dir` (in an object store) is made."""
    from albert_jax.data.builtin_dataset import cache_dir

    key = hashlib.sha256(str(output_dir).encode()).hexdigest()[:12]
    return cache_dir() / "staging" / f"{output_dir.name}-{key}"


def _upload(staged: Path, output_dir: epath.Path) -> None:
    """Copies the finished dataset `staged` to `output_dir`, the completion marker last, then
    removes the local copy."""
    files = sorted(path for path in staged.rglob("*") if path.is_file())
    for path in sorted(files, key=lambda path: path.name == _COMPLETE_MARKER):
        epath.Path(path).copy(output_dir / path.relative_to(staged).as_posix(), overwrite=True)
    shutil.rmtree(staged)


def _existing(output_dir: Path, settings: dict[str, Any]) -> PrepareSummary:
    """The summary of `output_dir` if it holds this preparation; else refuses to touch it."""
    try:
        metadata = DocumentSource(output_dir, TRAIN_SPLIT).metadata
    except InputError:
        metadata = {}
    if {key: metadata.get(key) for key in settings} != _jsonable(settings):
        raise InputError(
            f"{str(output_dir)!r} exists and is not this preparation; "
            "remove it or choose another output directory"
        )
    log.info("%s is already prepared from this source and tokenizer", output_dir)
    return PrepareSummary(
        output_dir, metadata["documents"], metadata["tokens"], metadata["dropped_documents"]
    )


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):  # honours CPU limits of containers and taskset
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _jsonable(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))


def _write_json_atomically(path: Path, value: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value, indent=1))
    os.replace(temporary, path)
