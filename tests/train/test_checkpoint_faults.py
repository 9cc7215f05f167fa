"""Damaged checkpoints and failing storage: a run resumes from the newest checkpoint that
restores (setting the damaged ones aside, with a warning naming them), refuses what it must not
guess about with one line and the workdir untouched, and stops with one line when a save cannot
be written, the earlier checkpoints intact and resumable. Runs in this process, on the tiny
config; every damaged run must end with exactly the parameters of the undamaged one."""

import contextlib
import gc
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from albert_jax.errors import InputError
from albert_jax.tasks.registry import resolve
from albert_jax.train import checkpoint as checkpoint_lib
from albert_jax.train import loop
from tests.train.helpers import checkpoint_params, complete_steps, snapshot

# The in-process runs compile the tiny config's programs once, with the session's other runs.
pytestmark = pytest.mark.usefixtures("in_process_cache")


def largest_array_file(checkpoint: Path) -> Path:
    return max((checkpoint / "params").rglob("d/*"), key=lambda p: p.stat().st_size)


def truncate(checkpoint: Path) -> None:
    path = largest_array_file(checkpoint)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def delete(checkpoint: Path) -> None:
    largest_array_file(checkpoint).unlink()


def garbage_metadata(checkpoint: Path) -> None:
    (checkpoint / "params" / "_METADATA").write_text("{not json")


def empty_newer_folder(checkpoint: Path) -> None:
    (checkpoint.parent / "99").mkdir()


DAMAGES = {"truncated-array": truncate, "deleted-array": delete, "garbage-metadata": garbage_metadata,
           "empty-step-folder": empty_newer_folder}


@pytest.fixture
def copy_of_finished(finished_workdir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_workdir, workdir)
    return workdir


def assert_same_params(workdir, reference, step=10):
    jax.tree.map(np.testing.assert_array_equal, checkpoint_params(workdir, step),
                 checkpoint_params(reference, step))


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(
        damage, tiny_config, copy_of_finished, finished_workdir, caplog):
    DAMAGES[damage](copy_of_finished / "checkpoints" / "10")
    damaged = "99" if damage == "empty-step-folder" else "10"
    # keep_checkpoints=1: the one checkpoint that restores must survive the retention.
    with caplog.at_level(logging.WARNING, logger=checkpoint_lib.__name__):
        loop.train(resolve(tiny_config("--config.keep_checkpoints=1")), str(copy_of_finished))
    warning = f"checkpoint {copy_of_finished / 'checkpoints' / damaged} does not restore ("
    assert any(warning in message for message in caplog.messages), caplog.messages
    assert (copy_of_finished / "checkpoints" / f"{damaged}.unreadable").is_dir()
    # A damaged 10 was trained again from 5 (which retention then dropped), to exactly the
    # parameters of the undamaged run.
    assert complete_steps(copy_of_finished) == ([5, 10] if damaged == "99" else [10])
    assert_same_params(copy_of_finished, finished_workdir)


def test_a_workdir_where_no_checkpoint_restores_is_refused_untouched(tiny_config, copy_of_finished, monkeypatch):
    truncate(copy_of_finished / "checkpoints" / "10")
    delete(copy_of_finished / "checkpoints" / "5")
    before = snapshot(copy_of_finished)
    # What would print "Exception ignored in ..." pages, behind the hook the run installs.
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(InputError, match=r"no checkpoint in .*checkpoints restores: step 10: Encountered "
                                         r"error while reading array.*; step 5: .*; move them away"):
        loop.train(resolve(tiny_config()), str(copy_of_finished))
    assert snapshot(copy_of_finished) == before
    # orbax's reads of the other arrays, abandoned when one failed, are closed when collected,
    # during the restore or (under load, as in CI) any time later.
    gc.collect()
    assert [repr(u.object) for u in unraisable] == []


def test_a_checkpoint_of_another_optimizer_is_refused_untouched(tiny_config, copy_of_finished):
    before = snapshot(copy_of_finished)
    config = tiny_config("--config.optimizer=adamw", "--config.accept_changes=true")
    with pytest.raises(InputError, match=r"checkpoints/10 does not fit this config's model or optimizer: "
                                         r"train_state opt_state\.\S+ is .+ there and .+ here"):
        loop.train(resolve(config), str(copy_of_finished))
    assert snapshot(copy_of_finished) == before


def test_a_checkpoint_of_a_newer_format_is_refused_untouched(tiny_config, copy_of_finished):
    metadata = copy_of_finished / "checkpoints" / "10" / "_CHECKPOINT_METADATA"
    record = json.loads(metadata.read_text())
    record["custom_metadata"]["albert_jax_checkpoint_format"] = checkpoint_lib.FORMAT + 1
    metadata.write_text(json.dumps(record))
    before = snapshot(copy_of_finished)
    with pytest.raises(InputError, match=rf"checkpoints/10 has format {checkpoint_lib.FORMAT + 1}, written "
                                         r"by a newer albert_jax; .*: upgrade albert_jax"):
        loop.train(resolve(tiny_config()), str(copy_of_finished))
    assert snapshot(copy_of_finished) == before


# -- failing storage ----------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A tmpfs of `size` at `path` (needs root and permission to mount; skips otherwise)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def fill(disk: Path, leave: int) -> None:
    """Writes a file that leaves `leave` bytes of `disk` free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(free - leave, 0))


def test_a_full_disk_stops_the_run_with_one_line_and_the_earlier_checkpoint_resumes(
        tiny_config, tmp_path, finished_workdir, monkeypatch, caplog):
    save = checkpoint_lib.Checkpoints.save

    def save_on_a_full_disk(self, state, data_iterator):
        if int(state.step) == 10:
            self.wait()  # step 5 is complete
            fill(disk, leave=64 * 1024)  # room for the metrics, not for a checkpoint
        save(self, state, data_iterator)

    monkeypatch.setattr(checkpoint_lib.Checkpoints, "save", save_on_a_full_disk)
    gc.collect()  # what earlier tests left goes to pytest's hook, not to this one
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    config = tiny_config("--config.keep_checkpoints=1")
    with small_disk(tmp_path / "disk", "16m") as disk:
        with (caplog.at_level(logging.WARNING),
              pytest.raises(InputError, match=r"^could not write a checkpoint to .*checkpoints \(No space left "
                                              r"on device\); the checkpoints of step\(s\) 5 there are intact: "
                                              r"free space or fix the storage, then rerun")):
            loop.train(resolve(config), str(disk / "run"))
        gc.collect()  # asyncio logs the futures orbax left holding the error when they are collected
        # That one line is all: orbax's threads and futures echoed it in hundreds of lines.
        assert [record.getMessage() for record in caplog.records] == []
        assert [str(u.exc_value) for u in unraisable] == []
        # Retention keeps the last complete checkpoint until a newer one is complete.
        assert complete_steps(disk / "run") == [5]
        shutil.copytree(disk / "run", tmp_path / "moved")
    monkeypatch.undo()
    loop.train(resolve(config), str(tmp_path / "moved"))
    assert_same_params(tmp_path / "moved", finished_workdir)
