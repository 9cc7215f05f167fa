"""Training metrics: analytic FLOPs and MFU, and where metrics go (stdout, JSONL, TensorBoard).

Only process 0 writes; the other processes build a `MetricsWriter` that does nothing, so the
trainer runs the same code everywhere.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from etils import epath
from tqdm import tqdm

from albert_jax import storage
from albert_jax import workdir as layout
from albert_jax.model.config import AlbertConfig

log = logging.getLogger(__name__)

# Shown on stdout (all logged metrics go to the JSONL file and TensorBoard).
_STDOUT_KEYS = ("loss", "mlm_accuracy", "sop_accuracy", "learning_rate", "examples_per_sec", "mfu")
# A metric's trivial baseline (e.g. `eval_mlm_accuracy_baseline`) is shown beside the metric.
_BASELINE = "_baseline"


def train_flops_per_example(config: AlbertConfig, seq_length: int, num_predictions: int) -> float:
    """Matmul FLOPs of one example's forward and backward pass (3x the forward).

    Every layer application counts, shared parameters or not (sharing saves memory, not
    compute): num_hidden_layers groups applied, each of inner_group_num layers. The MLM head
    runs only at the `num_predictions` masked slots.
    Rematerialisation is not counted (it is overhead, not model FLOPs).
    """
    S, E, H, I = seq_length, config.embedding_size, config.hidden_size, config.intermediate_size
    layer = 2 * S * 4 * H * H + 2 * 2 * S * S * H + 2 * 2 * S * H * I  # q,k,v,o; scores, mix; ffn
    forward = (2 * S * E * H  # embedding projection E -> H
               + config.num_hidden_layers * config.inner_group_num * layer
               + 2 * H * H + 2 * H * config.num_labels  # pooler, SOP classifier
               + num_predictions * (2 * H * E + 2 * E * config.vocab_size))  # MLM transform, decoder
    return 3.0 * forward


class MetricsWriter:
    """One line per logged step to stdout, `WORKDIR/metrics.jsonl` (appended to on resume) and
    TensorBoard event files in `WORKDIR/tensorboard` (tensorboardX: no TensorFlow needed), plus a
    progress bar on stderr.

    In an object store (gs://) the event files are written locally and uploaded with
    metrics.jsonl, by its background thread (tensorboardX's own gs:// writer would upload the
    whole file again at every flush, from the training thread, and its writer thread dies on a
    failed upload, after which logging blocks).
    """

    def __init__(self, workdir: str, *, total_steps: int, start_step: int):
        self.enabled = jax.process_index() == 0
        if not self.enabled:
            return
        from tensorboardX import SummaryWriter

        events = epath.Path(workdir) / layout.TENSORBOARD
        self._staged_events = None if storage.is_local(events) else _StagedFiles(events)
        self.tensorboard = SummaryWriter(str(self._staged_events.local if self._staged_events else events))
        self.jsonl = _JsonLines(epath.Path(workdir) / layout.METRICS,
                                also_upload=self._upload_events if self._staged_events else None)
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        file=sys.stderr, mininterval=1.0)

    def advance(self, steps: int = 1) -> None:
        if self.enabled:
            self.bar.update(steps)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        metrics = {k: float(v) for k, v in metrics.items()}
        for name, value in metrics.items():
            if math.isfinite(value):
                self.tensorboard.add_scalar(name, value, step)
        self.tensorboard.flush()
        # After the events: in an object store this line's upload takes them along.
        self.jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
        shown = [_show(k, metrics) for k in _shown_keys(metrics)]
        prefix = "eval " if any(k.startswith("eval_") for k in metrics) else ""
        self.bar.write(f"{prefix}step {step}: " + ", ".join(shown), file=sys.stdout)
        if "loss" in metrics:
            self.bar.set_postfix(loss=f"{metrics['loss']:.3f}", refresh=False)

    def sync(self) -> None:
        """Returns once `metrics.jsonl` holds every line written (the loop calls it before each
        checkpoint, so that a resumed run's metrics never miss a step)."""
        if self.enabled:
            self.jsonl.sync()

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.jsonl.close()
            self.tensorboard.close()  # writes the events still queued
            if self._staged_events:
                self._staged_events.close()

    def _upload_events(self) -> None:
        self.tensorboard.flush()
        self._staged_events.upload()


class _StagedFiles:
    """Files written in a local folder and uploaded, whole, to a folder in an object store."""

    def __init__(self, remote: epath.Path):
        self.remote = remote
        self.local = Path(tempfile.mkdtemp(prefix="albert_jax_tensorboard_"))
        self._uploaded: dict[str, int] = {}  # file name -> bytes uploaded

    def upload(self) -> None:
        """Uploads each file that changed since its last upload (raises what storage raises)."""
        for file in sorted(self.local.iterdir()):
            if self._uploaded.get(file.name) != file.stat().st_size:
                data = file.read_bytes()
                storage.write_atomically(self.remote / file.name, data)
                self._uploaded[file.name] = len(data)

    def close(self) -> None:
        """Uploads what changed (a failure is a warning: the run is done), then deletes the
        local folder."""
        try:
            self.upload()
        except Exception as error:  # noqa: BLE001 (any storage error)
            log.warning("could not upload the TensorBoard events to %s (%s)", self.remote, error)
        shutil.rmtree(self.local, ignore_errors=True)


class _JsonLines:
    """A file lines are appended to, whole lines only from a reader's view.

    A local file is appended to, one write per line. An object (gs://) cannot be appended to:
    it is uploaded whole, by a background thread so that training never waits on it, with the
    newest text each time (lines written during an upload go with the next one), followed by
    `also_upload` (the TensorBoard events). `sync` waits for the upload of every line written.
    A failed upload is a warning, and the next line's upload tries again: the metrics log is not
    worth stopping a run for.
    """

    def __init__(self, path: epath.Path, also_upload: Callable[[], None] | None = None):
        self.path = path
        self._also_upload = also_upload
        if storage.is_local(path):
            self.file = open(path, "a")  # noqa: SIM115 (open for the run)
            return
        self.file = None
        self.text = path.read_text() if path.exists() else ""
        self._uploaded = len(self.text)  # characters of `text` the object holds
        self._failed = False  # the last upload failed; cleared by the next line
        self._closing = False
        self._changed = threading.Condition()
        self._uploader = threading.Thread(target=self._upload, name="metrics.jsonl upload", daemon=True)
        self._uploader.start()

    def write(self, line: str) -> None:
        if self.file is not None:
            self.file.write(line)
            self.file.flush()
            return
        with self._changed:
            self.text += line
            self._failed = False
            self._changed.notify_all()

    def sync(self) -> None:
        if self.file is None:
            with self._changed:
                self._changed.wait_for(lambda: self._uploaded == len(self.text) or self._failed)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            return
        self.sync()
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._uploader.join()

    def _upload(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._closing or (self._uploaded < len(self.text) and not self._failed))
                if self._closing:
                    return
                text = self.text
            try:
                storage.write_atomically(self.path, text)
                if self._also_upload:
                    self._also_upload()
            except Exception as error:  # noqa: BLE001 (any storage error: warn, retry later)
                log.warning("could not upload the metrics to %s (%s); trying again with the next "
                            "metrics", self.path.parent, error)
                with self._changed:
                    self._failed = True
                    self._changed.notify_all()
            else:
                with self._changed:
                    self._uploaded = len(text)
                    self._changed.notify_all()


def _shown_keys(metrics: dict[str, float]) -> list[str]:
    keys = [k for k in _STDOUT_KEYS if k in metrics]
    return keys or [k for k in metrics if k.startswith("eval_") and not k.endswith(_BASELINE)]


def _show(key: str, metrics: dict[str, float]) -> str:
    """`mlm_accuracy 0.31 (baseline 0.136)`: the value, and its baseline where there is one."""
    shown = f"{key.removeprefix('eval_')} {_fmt(metrics[key])}"
    baseline = metrics.get(key + _BASELINE)
    return shown if baseline is None else f"{shown} (baseline {_fmt(baseline)})"


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
