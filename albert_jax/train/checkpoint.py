"""Orbax checkpoints of the train state and the data iterator, in the workdir.

Layout of one checkpoint, `WORKDIR/checkpoints/<step>/`:
- `params/`: the parameters, exactly `nnx.state(model, nnx.Param).to_pure_dict()` (the item
  `Model.from_pretrained` reads, with `WORKDIR/config.json` beside the checkpoints);
- `train_state/`: `{"step": ..., "opt_state": ...}`;
- `data/`: the grain iterator state of every process.

Saves are asynchronous: the arrays are copied off the devices, then written while training
goes on. A step directory appears only once complete, so a run killed mid-save resumes from the
previous checkpoint. Restoring takes abstract targets carrying shardings, which may describe
another mesh or device count than the one that saved.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from albert_jax import workdir as layout
from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig
from albert_jax.train.state import Params, TrainState

ITEMS = ("params", "train_state", "data")


def saved_steps(workdir: str) -> list[int]:
    """Steps of the complete checkpoints in `workdir` (none if it has no checkpoints folder)."""
    directory = os.path.join(workdir, layout.CHECKPOINTS)
    return ocp.path.step.checkpoint_steps(directory) if os.path.isdir(directory) else []


class Checkpoints:
    """Saving, listing and restoring the checkpoints of one workdir."""

    def __init__(self, workdir: str, *, keep: int):
        self.directory = os.path.join(os.path.abspath(workdir), layout.CHECKPOINTS)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=True)
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, state: TrainState, data_iterator: grain.DatasetIterator) -> None:
        """Starts saving at `state.step`; returns once the arrays are off the devices."""
        step = int(jax.device_get(state.step))
        self.manager.save(step, args=ocp.args.Composite(
            params=ocp.args.StandardSave(state.params),
            train_state=ocp.args.StandardSave({"step": state.step, "opt_state": state.opt_state}),
            data=grain.checkpoint.CheckpointSave(data_iterator)), force=True)

    def restore(self, step: int, abstract_state: TrainState,
                data_iterator: grain.DatasetIterator) -> TrainState:
        """The state saved at `step`, placed as `abstract_state`'s shardings say; the data
        iterator is moved to where it was at that step."""
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(
                params=ocp.args.StandardRestore(abstract_state.params),
                train_state=ocp.args.StandardRestore(
                    {"step": abstract_state.step, "opt_state": abstract_state.opt_state}),
                data=grain.checkpoint.CheckpointRestore(data_iterator)))
        except ValueError as error:  # orbax's word for arrays whose shapes or tree differ
            raise InputError(f"checkpoint {self.directory}/{step} does not fit this config's "
                             f"model or optimizer ({str(error).strip().splitlines()[0]})") from error
        train_state = restored["train_state"]
        return TrainState(train_state["step"], restored["params"], train_state["opt_state"])

    def wait(self) -> None:
        """Blocks until pending saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


class BestCheckpoint:
    """The parameters of the best evaluation so far, kept apart from the rolling checkpoints
    (as the original fine-tuning scripts kept the best of their evaluated checkpoints).

    `WORKDIR/best/` is a model directory: config.json and params/ (which `from_pretrained`
    reads), best.json (the step and its eval metrics), and after `export` also
    model.safetensors and the tokenizer, which transformers reads.
    """

    def __init__(self, workdir: str, model: AlbertConfig, metric: str, higher_is_better: bool):
        self.directory = Path(os.path.abspath(workdir)) / layout.BEST
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

    def export(self, model_class: type[nnx.Module], tokenizer_path: Path | None) -> None:
        """Adds the Hugging Face files (weights and tokenizer) to the best model's directory."""
        if self.record is None or jax.process_index() != 0:
            return
        model_class.from_pretrained(self.directory).save_pretrained(self.directory, layout="hf")
        if tokenizer_path is not None:
            from albert_jax import AlbertTokenizer

            AlbertTokenizer.from_pretrained(tokenizer_path).save_pretrained(self.directory)


def _write_json(path: Path, value) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=lambda x: np.asarray(x).tolist()) + "\n")
    os.replace(tmp, path)
