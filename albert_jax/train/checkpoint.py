"""Orbax checkpoints of the train state and the data iterator, in the workdir.

Layout of one checkpoint, `WORKDIR/checkpoints/<step>/`:
- `params/`: the parameters, exactly `nnx.state(model, nnx.Param).to_pure_dict()` (the item
  `Model.from_pretrained` reads, with `WORKDIR/config.json` beside the checkpoints);
- `train_state/`: `{"step": ..., "opt_state": ...}`;
- `data/`: the grain iterator state of every process;
- `_CHECKPOINT_METADATA`: orbax's, whose custom metadata records the checkpoint `FORMAT`.

Saves are asynchronous: the arrays are copied off the devices, then written while training
goes on. A step directory appears only once complete (orbax writes `<step>.orbax-checkpoint-tmp`
and renames it), so a run killed mid-save resumes from the previous checkpoint; the next run
removes the leftover. A step directory that is there but does not restore (truncated or deleted
files, garbage metadata, an empty folder) is set aside as `<step>.unreadable` with a warning,
and the run resumes from the newest one that restores. Restoring takes abstract targets carrying
shardings, which may describe another mesh or device count than the one that saved.

Format history: checkpoints without a recorded format (format 0) and format 1 share one layout.
A change of layout bumps `FORMAT` and, in `Checkpoints.restore_latest`, converts what older
formats saved, so that older runs keep resuming; tests/data/golden_checkpoint holds a format-1
workdir that must keep loading (tests/train/test_golden_checkpoint.py).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from flax import nnx

from albert_jax import storage
from albert_jax import workdir as layout
from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig
from albert_jax.train.state import Params, TrainState

log = logging.getLogger(__name__)

# The layout of the checkpoints this code writes (see "Format history" above).
FORMAT = 1
_FORMAT_KEY = "albert_jax_checkpoint_format"
# A checkpoint that does not restore is renamed so: out of orbax's sight (not a step name),
# and kept for whoever wants to look at it.
_SET_ASIDE = ".unreadable"
# The status codes tensorstore (orbax's array storage) leads its errors with when the storage
# itself failed: a full disk, missing permissions, an unreachable bucket.
_STORAGE_STATUSES = ("RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
                     "DATA_LOSS", "ABORTED", "UNKNOWN")


def saved_steps(workdir: str) -> list[int]:
    """Steps of the complete checkpoints in `workdir` (none if it has no checkpoints folder)."""
    directory = epath.Path(workdir) / layout.CHECKPOINTS
    return ocp.path.step.checkpoint_steps(directory) if directory.is_dir() else []


class Checkpoints:
    """Saving, listing and restoring the checkpoints of one workdir.

    A save or wait that fails for the storage's sake (a full disk, lost permissions) raises
    InputError naming the directory and the checkpoints that stay intact; the checkpoints
    retention would drop are removed only after a newer one is complete.
    """

    def __init__(self, workdir: str, *, keep: int):
        self.directory = storage.absolute(workdir) / layout.CHECKPOINTS
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=True,
            # A save cut short (a kill, a full disk) leaves `<step>.orbax-checkpoint-tmp`, which
            # is never a checkpoint and would only take space.
            cleanup_tmp_directories=True)
        handlers = {"params": ocp.StandardCheckpointHandler(),
                    "train_state": ocp.StandardCheckpointHandler(),
                    "data": grain.checkpoint.CheckpointHandler()}
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        self._failed = False  # a write failed and was reported
        _quiet_storage_failure_echoes()

    def save(self, state: TrainState, data_iterator: grain.DatasetIterator) -> None:
        """Starts saving at `state.step`; returns once the arrays are off the devices."""
        step = int(jax.device_get(state.step))
        with self._writing():
            self.manager.save(step, args=ocp.args.Composite(
                params=ocp.args.StandardSave(state.params),
                train_state=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
                data=grain.checkpoint.CheckpointSave(data_iterator)),
                custom_metadata={_FORMAT_KEY: FORMAT}, force=True)

    def restore_latest(self, abstract_state: TrainState,
                       data_iterator: grain.DatasetIterator) -> TrainState | None:
        """The newest checkpoint that restores, placed as `abstract_state`'s shardings say, with
        the data iterator moved to where it was at that step; None when there is no checkpoint.

        Newer checkpoints that do not restore (see the module docstring) are set aside with a
        warning. One that does not fit `abstract_state` (another model or optimizer) or was
        written by a newer albert_jax is an InputError, as is a workdir where none restores:
        in those cases nothing is set aside.
        """
        unreadable: list[tuple[int, str]] = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                self._check_format(step)
                self._check_fits(step, abstract_state)
                with _unraisable_silenced():
                    state = self._restore(step, abstract_state, data_iterator)
                problem = None
            except InputError:
                raise
            except Exception as error:  # noqa: BLE001 (what a damaged file raises is anyone's guess)
                state, problem = None, _first_line(error)
            # All processes must resume from the same step, whichever of them failed to read.
            if not _on_every_process(problem is None):
                unreadable.append((step, problem or "another process could not read it"))
                continue
            self._set_aside(unreadable, step)
            return state
        if unreadable:
            raise InputError(f"no checkpoint in {self.directory} restores: "
                             + "; ".join(f"step {step}: {problem}" for step, problem in unreadable)
                             + "; move them away to start afresh, or use another --workdir")
        return None

    def wait(self) -> None:
        """Blocks until pending saves are on disk."""
        with self._writing():
            self.manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves, then releases orbax's threads."""
        with self._writing():
            self.manager.close()

    # -- restoring -----------------------------------------------------------------------------

    def _check_format(self, step: int) -> None:
        # Unrecorded (format 0, or garbage metadata): the one layout there has been so far.
        saved = (self.manager.metadata(step).custom_metadata or {}).get(_FORMAT_KEY, 0)
        if not isinstance(saved, int) or saved > FORMAT:
            raise InputError(f"checkpoint {self.directory}/{step} has format {saved!r}, written by a "
                             f"newer albert_jax; this one reads formats up to {FORMAT}: upgrade "
                             "albert_jax, or use another --workdir")

    def _check_fits(self, step: int, abstract_state: TrainState) -> None:
        """Compares the saved arrays' names and shapes with the config's, from the metadata
        (the arrays are not read); a difference is the config's doing, not the checkpoint's."""
        wanted = {"params": abstract_state.params,
                  "train_state": {"step": abstract_state.step, "opt_state": abstract_state.opt_state}}
        metadata = self.manager.item_metadata(step)
        for item, tree in wanted.items():
            if metadata.get(item) is None:
                raise _Unreadable(f"no readable {item} metadata")
            saved, expected = _shapes(metadata[item]), _shapes(tree)
            if saved != expected:
                name = min(name for name in saved.keys() | expected.keys()
                           if saved.get(name) != expected.get(name))
                raise InputError(f"checkpoint {self.directory}/{step} does not fit this config's model or "
                                 f"optimizer: {item} {name} is {saved.get(name, 'missing')} there and "
                                 f"{expected.get(name, 'missing')} here")

    def _restore(self, step: int, abstract_state: TrainState,
                 data_iterator: grain.DatasetIterator) -> TrainState:
        restored = self.manager.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_state.params),
            train_state=ocp.args.StandardRestore(
                {"step": abstract_state.step, "opt_state": abstract_state.opt_state}),
            data=grain.checkpoint.CheckpointRestore(data_iterator)))
        train_state = restored["train_state"]
        return TrainState(train_state["step"], restored["params"], train_state["opt_state"])

    def _set_aside(self, unreadable: list[tuple[int, str]], resumed: int) -> None:
        """Renames the unreadable checkpoints out of the way, so that neither a resume nor the
        retention of `keep` checkpoints counts them."""
        if not unreadable:
            return
        for step, problem in unreadable:
            source = self.directory / str(step)
            target = source.with_name(source.name + _SET_ASIDE)
            while target.exists():
                target = target.with_name(target.name + _SET_ASIDE)
            if jax.process_index() == 0:
                source.rename(target)
                log.warning("checkpoint %s does not restore (%s): set aside as %s; resuming from "
                            "step %d", source, problem, target, resumed)
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("albert_jax: unreadable checkpoints set aside")
        self.manager.reload()

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turns a failure of the storage into one InputError; reports it once, since every
        later wait of orbax's raises it again."""
        try:
            yield
        except Exception as error:
            if not _is_storage_error(error):
                raise
            if self._failed:
                return
            self._failed = True
            intact = sorted(ocp.path.step.checkpoint_steps(self.directory))
            kept = (f"the checkpoints of step(s) {', '.join(map(str, intact))} there are intact"
                    if intact else "there was no complete checkpoint yet")
            raise InputError(f"could not write a checkpoint to {self.directory} ({_storage_problem(error)}); "
                             f"{kept}: free space or fix the storage, then rerun the same command "
                             "to resume") from error


class _StorageFailureEchoes(logging.Filter):
    """Drops the records that carry a storage error: when a write fails, each of orbax's threads
    logs it with a traceback, and asyncio logs every future left holding it when it is collected,
    hundreds of lines around the one in which `_writing` reports it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not _is_storage_error(error)


_ECHOES = _StorageFailureEchoes()


def _quiet_storage_failure_echoes() -> None:
    for name in ("absl", "asyncio"):  # orbax's logger, and asyncio's about unretrieved futures
        logging.getLogger(name).addFilter(_ECHOES)  # once: a filter already there is not added
    if not getattr(sys.unraisablehook, "drops_storage_echoes", False):
        sys.unraisablehook = _dropping_storage_echoes(sys.unraisablehook)


def _dropping_storage_echoes(hook):
    """`hook`, except for two echoes of a failure already reported:
    - the "Event loop is closed" that tensorstore raises when it completes a write of a save that
      failed: orbax closed that save's event loop when the first write failed;
    - orbax's reads of the other arrays of a checkpoint that did not restore, abandoned when the
      first read failed and closed whenever they are collected (anywhere in the run, not always
      within the restore), each raising a page of "Encountered error while reading array"."""

    def filtered(unraisable) -> None:
        error = unraisable.exc_value
        closed_loop = isinstance(error, RuntimeError) and str(error) == "Event loop is closed"
        abandoned_read = (getattr(getattr(unraisable.object, "cr_code", None), "co_name", None)
                          == "_read_array_index_and_device_put"
                          and isinstance(error.__cause__, GeneratorExit))
        if not (closed_loop or abandoned_read):
            hook(unraisable)

    filtered.drops_storage_echoes = True
    return filtered


class _Unreadable(Exception):
    """A checkpoint lacks what it should hold."""


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """{dotted path: shape} of the arrays of a tree, named as orbax names them."""

    def name(key) -> str:
        for attribute in ("key", "idx", "name"):
            if hasattr(key, attribute):
                return str(getattr(key, attribute))
        return str(key)

    return {".".join(map(name, path)): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


@contextlib.contextmanager
def _unraisable_silenced() -> Iterator[None]:
    """A failed restore leaves orbax's concurrent reads of the other arrays failing too, each
    printing a page of "Exception ignored" when collected; the one warning about the checkpoint
    says enough."""
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = previous


def _on_every_process(ok: bool) -> bool:
    if jax.process_count() == 1:
        return ok
    from jax.experimental import multihost_utils

    return bool(np.all(multihost_utils.process_allgather(np.asarray(ok))))


def _is_storage_error(error: BaseException) -> bool:
    # Tensorstore reports I/O failures as ValueError("STATUS: ..."), some with the OS error code.
    message = str(error)
    return (isinstance(error, OSError) or "os_error_code" in message
            or message.split(":", 1)[0] in _STORAGE_STATUSES)


def _storage_problem(error: BaseException) -> str:
    """What the operating system said, where the error carries it."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    code = re.search(r"os_error_code='?(\d+)", str(error))
    return os.strerror(int(code.group(1))) if code else _first_line(error)


def _first_line(error: BaseException, limit: int = 200) -> str:
    lines = str(error).strip().splitlines()
    # Orbax follows a failed array read with a page of tensorstore's spec.
    line = (lines[0] if lines else type(error).__name__).split(" See full TensorStore details")[0]
    return line if len(line) <= limit else line[:limit] + "..."


class BestCheckpoint:
    """The parameters of the best evaluation so far, kept apart from the rolling checkpoints
    (as the original fine-tuning scripts kept the best of their evaluated checkpoints).

    `WORKDIR/best/` is a model directory: config.json and params/ (which `from_pretrained`
    reads), best.json (the step and its eval metrics), and after `export` also
    model.safetensors and the tokenizer, which transformers reads.
    """

    def __init__(self, workdir: str, model: AlbertConfig, metric: str, higher_is_better: bool):
        self.directory = storage.absolute(workdir) / layout.BEST
        self.model, self.key, self.higher = model, f"eval_{metric}", higher_is_better
        record = self.directory / layout.BEST_RECORD
        self.record = json.loads(record.read_text()) if record.exists() else None

    def _better(self, value: float) -> bool:
        if self.record is None:
            return True
        best = self.record["metrics"][self.key]
        return value > best if self.higher else value < best

    def offer(self, step: int, metrics: dict[str, float], params: Params) -> bool:
        """Keeps `params` when `metrics` beat the best so far; True if they did."""
        value = metrics[self.key]
        if not math.isfinite(value) or not self._better(value):
            return False
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(self.directory / layout.PARAMS, params, force=True)
        checkpointer.wait_until_finished()
        checkpointer.close()
        self.record = {"step": step, "metric": self.key, "metrics": metrics}
        if jax.process_index() == 0:
            self.model.to_json_file(self.directory / layout.MODEL_CONFIG)
            _write_json(self.directory / layout.BEST_RECORD, self.record)
        return True

    def export(self, model_class: type[nnx.Module], tokenizer_path: epath.Path | None) -> None:
        """Adds the Hugging Face files (weights and tokenizer) to the best model's directory."""
        if self.record is None or jax.process_index() != 0:
            return
        model_class.from_pretrained(self.directory).save_pretrained(self.directory, layout="hf")
        if tokenizer_path is not None:
            from albert_jax import AlbertTokenizer

            AlbertTokenizer.from_pretrained(tokenizer_path).save_pretrained(self.directory)


def _write_json(path: epath.Path, value) -> None:
    storage.write_atomically(path, json.dumps(value, indent=2, default=lambda x: np.asarray(x).tolist()) + "\n")
