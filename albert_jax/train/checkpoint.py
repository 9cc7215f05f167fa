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

import os

import grain
import jax
import orbax.checkpoint as ocp

from albert_jax.errors import InputError
from albert_jax.train.state import TrainState

CHECKPOINTS_DIR = "checkpoints"
ITEMS = ("params", "train_state", "data")


def saved_steps(workdir: str) -> list[int]:
    """Steps of the complete checkpoints in `workdir` (none if it has no checkpoints folder)."""
    directory = os.path.join(workdir, CHECKPOINTS_DIR)
    return ocp.path.step.checkpoint_steps(directory) if os.path.isdir(directory) else []


class Checkpoints:
    """Saving, listing and restoring the checkpoints of one workdir."""

    def __init__(self, workdir: str, *, keep: int):
        self.directory = os.path.join(os.path.abspath(workdir), CHECKPOINTS_DIR)
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
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(f"checkpoint {self.directory}/{step} does not fit this config's "
                             f"model or optimizer ({str(error).splitlines()[0]})") from None
        train_state = restored["train_state"]
        return TrainState(train_state["step"], restored["params"], train_state["opt_state"])

    def wait(self) -> None:
        """Blocks until pending saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()
