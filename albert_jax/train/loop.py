"""The pretraining loop: one function, `train(config, workdir)`, in commented sections.

Every process of a multi-host run executes the same code; each reads its own rows of the global
batch, and only process 0 writes metrics. A rerun with the same workdir resumes from the newest
checkpoint with the data exactly where it was.

Everything that can be wrong with the user's input (config keys and values, mesh, batch split,
tokenizer, an incompatible or unwritable workdir) is checked before anything in the workdir is
written (`check_input`). Faults during the run lose nothing saved: a step whose loss or
gradients are not finite is never applied (`nonfinite` says whether the run stops or goes on);
SIGTERM and Ctrl-C save and stop; a checkpoint that does not restore is set aside and the one
before it resumed; a full disk stops the run with the checkpoints before it intact.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from etils import epath
from flax import nnx

from albert_jax import storage
from albert_jax import workdir as layout
from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig
from albert_jax.train import checkpoint as checkpoint_lib
from albert_jax.train import config as config_lib
from albert_jax.train import data as data_lib
from albert_jax.train import devices as devices_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import metrics as metrics_lib
from albert_jax.train import step as step_lib
from albert_jax.train.config import Run
from albert_jax.train.state import Params, TrainState
from albert_jax.train.task import Task, TaskData

log = logging.getLogger(__name__)

# Training-config keys whose change keeps a resume exact (a prefix names a group): how long,
# how often to log, evaluate and save, and where it runs (the mesh splits the same math).
RESUMABLE_KEYS = frozenset({
    "num_train_steps", "log_every_steps", "eval_every_steps", "eval_steps",
    "checkpoint_every_steps", "keep_checkpoints", "init_from", "peak_flops_per_device",
    "accept_changes", "mesh", "rules", "grad_accum_steps", "nonfinite", "steps_per_execution",
})
# AlbertConfig fields that change how the model computes, not what it is: a run may resume or
# start from a pretrained model with other values.
_COMPUTE_FIELDS = frozenset({"dtype", "attention_implementation", "remat_policy", "scan_layers"})
# A pretrained model is another model whatever its dropout was.
_DROPOUT_FIELDS = frozenset({"hidden_dropout_prob", "attention_probs_dropout_prob",
                             "classifier_dropout_prob"})
# A fine-tuning task puts its own head on a pretrained encoder.
_HEAD_FIELDS = frozenset({"num_labels", "label_names"})


def train(run: Run, workdir: str, *, devices: Sequence[jax.Device] | None = None) -> TrainState:
    """Trains `run` (a config resolved with its task, see `tasks.registry.resolve`) in `workdir`,
    on `devices` (default: all). Returns the final state: at num_train_steps, or earlier when
    stopped by SIGTERM. Ctrl-C (SIGINT) saves the same way, then raises KeyboardInterrupt with
    a message saying so; a second Ctrl-C quits at once, saving nothing more."""
    return _train(check_input(run, workdir, devices=devices))


@dataclasses.dataclass(frozen=True)
class Checked:
    """A run whose input was checked, with what the checks built."""

    run: Run
    workdir: str
    mesh: jax.sharding.Mesh
    program: step_lib.Program
    data: TaskData
    changes: list[str]  # accepted changes of the training config, recorded when the run starts
    pretrained: Params | None  # the parameters to start from, when there is no checkpoint


def check_input(run: Run, workdir: str, *, devices: Sequence[jax.Device] | None = None) -> Checked:
    """Everything that can be wrong with the user's input (config values, mesh, batch split,
    data and tokenizer, the workdir's kind and contents): raises InputError, having written
    nothing."""
    config = run.config
    _check_paths(workdir)
    mesh = mesh_lib.make_mesh(**config.mesh, devices=devices)
    program = step_lib.build_program(run, mesh)
    changes = _check_workdir(workdir, run)
    data = run.task.open_data(run.model, config.global_batch_size)
    pretrained = None
    if config.init_from and not checkpoint_lib.saved_steps(workdir):
        pretrained = _pretrained_params(config.init_from, run, program)
    return Checked(run, workdir, mesh, program, data, changes, pretrained)


def _train(checked: Checked) -> TrainState:
    run, workdir, mesh, program, data = (checked.run, checked.workdir, checked.mesh,
                                         checked.program, checked.data)
    config, task = run.config, run.task

    # -- Train state: resume, start from a pretrained model, or initialise -------------------------
    try:
        storage.make_dirs(workdir)
    except OSError as error:  # what `_check_paths` cannot foresee: a name too long, /proc, ...
        raise InputError(f"workdir {workdir} cannot be made: {error.strerror}; use another --workdir") from error
    checkpoints = checkpoint_lib.Checkpoints(workdir, keep=config.keep_checkpoints)
    rows = mesh_lib.process_rows(mesh_lib.batch_sharding(mesh, program.rules, 1), config.global_batch_size)
    train_data = data.train_iterator(rows)
    try:
        # Restored before the run's files are written: a checkpoint that does not fit is refused
        # with the workdir as it was.
        state = checkpoints.restore_latest(program.abstract_state, train_data)
    except BaseException:
        checkpoints.close()
        train_data.close()
        raise
    if state is not None:
        resumed = int(jax.device_get(state.step))
        _info(f"resuming from {checkpoints.directory}/{resumed}")
    elif checked.pretrained is not None:
        resumed = None
        _info(f"starting from the pretrained model {config.init_from}")
        state = program.init_from_params(checked.pretrained)
    else:
        resumed = None
        state = program.init()
    if jax.process_index() == 0:
        _write_run_files(workdir, run, data, resumed, checked.changes)
    start_step = int(jax.device_get(state.step))
    if start_step >= config.num_train_steps:
        _info(f"already trained to step {start_step} (num_train_steps {config.num_train_steps})")
        checkpoints.close()
        train_data.close()
        return state

    # -- Compile ahead of time, so that step times never include compilation ---------------------
    compile_start = time.perf_counter()
    # One program per sequence width the task's batches come in (its length buckets).
    train_steps = {length: program.train_step.lower(program.abstract_state, abstract).compile()
                   for length, abstract in program.abstract_batches.items()}
    repeat = config.steps_per_execution
    stacked = ({length: program.abstract_batches_of(repeat, length) for length in program.abstract_batches}
               if repeat > 1 else {})
    repeated_steps = {length: program.train_steps.lower(program.abstract_state, abstract).compile()
                      for length, abstract in stacked.items()}
    flops_per_step = config.global_batch_size * task.flops_per_example(run.model)
    device_kind = mesh.devices.flat[0].device_kind
    peak = devices_lib.peak_flops(device_kind, config.peak_flops_per_device)
    num_params = sum(x.size for x in jax.tree.leaves(program.abstract_state.params))
    _info(f"{num_params:,} parameters on mesh {dict(mesh.shape)} of {mesh.devices.size} "
          f"{device_kind} device(s), {jax.process_count()} process(es); "
          f"train step compiled for length(s) {', '.join(map(str, train_steps))}"
          f"{f' (also {repeat} steps per execution)' if repeat > 1 else ''} in "
          f"{time.perf_counter() - compile_start:.1f}s; "
          f"{flops_per_step / 1e12:.3g} TFLOP per step")

    # -- Train -------------------------------------------------------------------------------------
    writer = metrics_lib.MetricsWriter(workdir, total_steps=config.num_train_steps,
                                       start_step=start_step)
    stop_signal = _StopSignal()
    best = (checkpoint_lib.BestCheckpoint(workdir, run.model, *task.best_metric)
            if task.best_metric and data.has_eval else None)
    pending: list[dict[str, jax.Array]] = []  # metrics since the last log, still on the devices
    last_eval: dict[str, float] = {}
    step = start_step
    # Every process executes the same sequence of programs; the preemption sync point counts
    # executions (it must advance by one per call), which is the step count when each runs one.
    executions = start_step
    interval_start = time.perf_counter()
    try:
        while step < config.num_train_steps:
            count = _steps_of_next_execution(step, config, data.has_eval)
            batches = [next(train_data) for _ in range(count)]
            lengths = {local["input_ids"].shape[-1] for local in batches}
            if count == repeat > 1 and len(lengths) == 1:
                length = lengths.pop()
                state, metrics = repeated_steps[length](state, data_lib.global_batches(batches, stacked[length]))
                pending.append(metrics)
            else:  # one at a time: fewer steps left before a pause, or batches of several widths
                for local in batches:
                    length = local["input_ids"].shape[-1]
                    batch = data_lib.global_batch(local, program.abstract_batches[length])
                    state, metrics = train_steps[length](state, batch)
                    pending.append(metrics)
            step += count
            executions += 1
            writer.advance(count)
            last = step == config.num_train_steps

            if step % config.log_every_steps == 0 or last:
                history = _per_step(jax.device_get(pending))
                _check_finite(history, step, config.nonfinite, checkpoints)
                summary = _summarise(history)
                seconds = (time.perf_counter() - interval_start) / len(history)
                summary.update(_throughput(seconds, config, summary.get("examples"), task.lengths[-1],
                                           flops_per_step, mesh.devices.size, peak))
                writer.write(step, summary)
                pending = []
            evaluate = data.has_eval and (step % config.eval_every_steps == 0 or last)
            stop = stop_signal.reached(executions)
            save = step % config.checkpoint_every_steps == 0 or last or stop
            if pending and (evaluate or save):
                # Step times count training only: the steps dispatched so far finish before the
                # pause starts, or their device time would be taken for the pause's.
                jax.block_until_ready(state)
                if save:  # never a checkpoint after a step that "stop" refuses
                    _check_finite(_per_step(jax.device_get(pending)), step, config.nonfinite, checkpoints)
            pause_start = time.perf_counter()
            if evaluate:
                eval_metrics, outputs = _evaluate(program, state.params, data, rows, task)
                writer.write(step, eval_metrics)
                last_eval = eval_metrics
                if best is not None and best.offer(step, eval_metrics, state.params) \
                        and jax.process_index() == 0:
                    task.write_predictions(outputs, workdir)
            if save:
                writer.sync()
                checkpoints.save(state, train_data)
            if stop:
                if stop_signal.name == "SIGTERM":  # said by every process: they agree on the step
                    log.info(f"SIGTERM: saved a checkpoint at step {step}; stopping")
                break
            if pending:
                interval_start += time.perf_counter() - pause_start
            else:
                interval_start = time.perf_counter()
    finally:
        try:
            checkpoints.close()  # waits for the saves in flight
        finally:
            writer.close()
            stop_signal.close()
            train_data.close()  # stops grain's prefetch threads and worker processes
    if stop_signal.name == "SIGINT":
        raise KeyboardInterrupt(f"interrupted: saved a checkpoint at step {step}; rerun the same "
                                "command to resume")
    if best is not None and step == config.num_train_steps:
        best.export(task.model_class, data.tokenizer_path)
        if jax.process_index() == 0:
            _write_results(workdir, best, last_eval, step, config)
    return state


# -- Pieces of the loop ------------------------------------------------------------------------------


def _steps_of_next_execution(step: int, config: ml_collections.ConfigDict, has_eval: bool) -> int:
    """`steps_per_execution`, or fewer where the next log, evaluation, checkpoint or the end
    comes sooner: those happen between executions."""
    intervals = [config.log_every_steps, config.checkpoint_every_steps]
    if has_eval:
        intervals.append(config.eval_every_steps)
    pause = min(step - step % every + every for every in intervals)
    return min(config.steps_per_execution, pause - step, config.num_train_steps - step)


def _per_step(pending: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The metrics of each step, from those of executions of one step or of several (each
    metric then has a leading axis, one entry per step)."""
    history = []
    for metrics in pending:
        if np.ndim(metrics["skipped"]) == 0:
            history.append(metrics)
        else:
            history.extend({k: v[i] for k, v in metrics.items()} for i in range(len(metrics["skipped"])))
    return history


def _summarise(history: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Means over the steps applied since the last log, and how many were skipped (their
    metrics describe no update); the learning rate and parameter norm as of the last step."""
    applied = [h for h in history if not h["skipped"]] or history
    summary = {k: float(np.mean([h[k] for h in applied])) for k in history[0] if k != "skipped"}
    for k in ("learning_rate", "param_norm"):
        summary[k] = float(history[-1][k])
    summary["skipped_steps"] = float(sum(h["skipped"] for h in history))
    return summary


def _check_finite(history: list[dict[str, np.ndarray]], step: int, nonfinite: str,
                  checkpoints: checkpoint_lib.Checkpoints) -> None:
    """With nonfinite="stop", stops the run at the first step of `history` (the steps up to
    `step`) that was not applied because it was not finite. Nothing after it has been saved."""
    skipped = [i for i, h in enumerate(history) if h["skipped"]]
    if nonfinite != "stop" or not skipped:
        return
    bad = step - len(history) + 1 + skipped[0]
    values = ", ".join(f"{k} {float(history[skipped[0]][k]):.4g}" for k in ("loss", "grad_norm"))
    checkpoints.wait()
    saved = checkpoint_lib.saved_steps(checkpoints.directory.parent)
    resume = f"the newest checkpoint is step {max(saved)}" if saved else "there is no checkpoint yet"
    raise InputError(f"step {bad} was not finite ({values}); stopped without applying or saving it "
                     f"({resume}): lower learning_rate, or set --config.nonfinite=skip to skip such "
                     "steps")


def _throughput(step_seconds: float, config: ml_collections.ConfigDict, examples: float | None,
                seq_length: int, flops_per_step: float, num_devices: int,
                peak: float | None) -> dict[str, float]:
    """Speed from the mean step time; `examples` per step where the task counts them (a packed
    row holds several), else one per row."""
    flops_per_device = flops_per_step / step_seconds / num_devices
    out = {
        "step_time": step_seconds,
        "examples_per_sec": (examples or config.global_batch_size) / step_seconds,
        "tokens_per_sec": config.global_batch_size * seq_length / step_seconds,
        "tflops_per_device": flops_per_device / 1e12,
    }
    if peak:
        out["mfu"] = flops_per_device / peak
    return out


def _evaluate(program: step_lib.Program, params: Params, data: TaskData, rows: tuple[int, int],
              task: Task) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """The task's held-out metrics, over the same held-out batches every time, and the outputs
    of every held-out example."""
    totals, outputs = None, []
    for local in data.eval_batches(rows):
        batch = data_lib.global_batch(local, program.abstract_batches[local["input_ids"].shape[-1]])
        sums, out = program.eval_step(params, batch)
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
        outputs.append(data_lib.to_host(out))
    gathered = {k: data_lib.concatenate([o[k] for o in outputs]) for k in outputs[0]}
    metrics = task.evaluate(jax.device_get(totals), gathered)
    return {f"eval_{k}": float(v) for k, v in metrics.items()}, gathered


def _write_results(workdir: str, best: checkpoint_lib.BestCheckpoint, final: dict[str, float], step: int,
                   config: ml_collections.ConfigDict) -> None:
    """WORKDIR/eval_results.json: the dev metrics of the best and of the final checkpoint, and how
    the best was chosen."""
    record = best.record
    results = {
        "best_step": record["step"],
        "best": {k.removeprefix("eval_"): v for k, v in record["metrics"].items()},
        "final_step": step,
        "final": {k.removeprefix("eval_"): v for k, v in final.items()},
        "selection": (f"best: the checkpoint with the highest dev {record['metric'].removeprefix('eval_')} "
                      f"among those evaluated every {config.eval_every_steps} steps and at the end "
                      "(the original ALBERT scripts' protocol); final: the last step's"),
    }
    storage.write_atomically(epath.Path(workdir) / layout.RESULTS, json.dumps(results, indent=2) + "\n")


class _StopSignal:
    """Notices SIGTERM (preemption) and Ctrl-C (SIGINT); `name` says which came.

    All processes of a multi-host run must stop at the same step: there JAX's coordination
    service agrees on the step after a SIGTERM (it installs its own handler), and a Ctrl-C is
    passed on to it as a SIGTERM. A single process just sets a flag. A second Ctrl-C quits at
    once: a save in flight is left unfinished, which the next run ignores.
    """

    def __init__(self):
        self.name: str | None = None
        self.multi_process = jax.process_count() > 1
        self.previous = {signal.SIGINT: signal.signal(signal.SIGINT, self._interrupt)}
        if not self.multi_process:
            self.previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._terminate)

    def _terminate(self, signum, frame) -> None:
        self.name = self.name or "SIGTERM"

    def _interrupt(self, signum, frame) -> None:
        if self.name == "SIGINT":
            os.write(2, b"interrupted again: quitting without saving\n")
            os._exit(128 + signal.SIGINT)
        self.name = "SIGINT"
        # Written directly: a signal handler must not take the locks that logging takes.
        os.write(2, b"Ctrl-C: stopping after this step with a checkpoint (Ctrl-C again quits at once, "
                    b"without it)\n")
        if self.multi_process:
            os.kill(os.getpid(), signal.SIGTERM)

    def reached(self, step: int) -> bool:
        if self.multi_process:
            from jax.experimental import multihost_utils

            reached = multihost_utils.reached_preemption_sync_point(step)
            if reached and self.name is None:
                self.name = "SIGTERM"
            return reached
        return self.name is not None

    def close(self) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


# -- Input checks ------------------------------------------------------------------------------------


def _differences(old: AlbertConfig, new: AlbertConfig, ignore: frozenset[str]) -> list[str]:
    return [f"{f.name} {getattr(old, f.name)!r} -> {getattr(new, f.name)!r}"
            for f in dataclasses.fields(AlbertConfig)
            if f.name not in ignore and getattr(old, f.name) != getattr(new, f.name)]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = list(value) if isinstance(value, tuple) else value
    return out


def _check_workdir(workdir: str, run: Run) -> list[str]:
    """A workdir holding another run is refused before anything is written to it.

    Returns the accepted changes of the training config (recorded when the run starts):
    those in `RESUMABLE_KEYS`, or any when `accept_changes` is set.
    """
    path = epath.Path(workdir) / layout.MODEL_CONFIG
    if not path.exists():
        return []
    differences = _differences(AlbertConfig.from_json_file(path), run.model, _COMPUTE_FIELDS)
    if differences:
        raise InputError(f"workdir {workdir} holds a run of a different model ({'; '.join(differences)}); "
                         "use another --workdir or the same model config")
    saved_path = epath.Path(workdir) / layout.TRAIN_CONFIG
    if not saved_path.exists() or not checkpoint_lib.saved_steps(workdir):
        return []  # nothing to resume: the run starts afresh
    try:
        saved = _flat(json.loads(saved_path.read_text()))
    except (OSError, ValueError) as error:
        raise InputError(f"{saved_path} is not a readable training config ({error}); restore it, "
                         "or use another --workdir") from None
    current = _flat(json.loads(run.config.to_json()))
    # A key the saved run did not have yet (added to albert_jax since) ran as its default.
    defaults = _flat(json.loads(config_lib.default_config().to_json()))
    for key in current.keys() - saved.keys():
        if key in defaults:
            saved[key] = defaults[key]
    changed = sorted(key for key in saved.keys() | current.keys()
                     if saved.get(key) != current.get(key) and not key.startswith("model."))
    refused = [key for key in changed if key not in RESUMABLE_KEYS and key.split(".")[0] not in RESUMABLE_KEYS]
    described = [f"{key}: {saved.get(key)!r} -> {current.get(key)!r}" for key in changed]
    if refused and not run.config.accept_changes:
        raise InputError(
            f"workdir {workdir} holds a run with another training config, which would not resume "
            f"exactly ({'; '.join(d for d in described if d.split(':')[0] in refused)}); use another "
            "--workdir, the same config, or --config.accept_changes=true to continue anyway")
    if "num_train_steps" in changed:
        _info("num_train_steps changed: the learning rate now decays to the new step count")
    return described


def _check_paths(workdir: str) -> None:
    """The workdir, and what a run keeps in it, must be of the right kind and writable: a run
    that could not save would otherwise fail (or wait for minutes) at its first checkpoint."""
    root = epath.Path(workdir)
    if root.is_file():
        raise InputError(f"workdir {workdir} is a file, not a directory; use another --workdir")
    directories = (layout.CHECKPOINTS, layout.TENSORBOARD, layout.BEST)
    for name in (*directories, layout.MODEL_CONFIG, layout.TRAIN_CONFIG, layout.METRICS,
                 layout.CONFIG_CHANGES, layout.TOKENIZER, layout.RESULTS):
        path = root / name
        if path.exists() and path.is_dir() != (name in directories):
            kind, needed = ("file", "directory") if name in directories else ("directory", "file")
            raise InputError(f"{path} is a {kind}, but a run keeps a {needed} there; move it away "
                             "or use another --workdir")
    if not storage.is_local(workdir):
        return  # an object store has no folders to make, nor permissions os.access could see
    existing = os.path.abspath(workdir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputError(f"workdir {workdir} cannot be made: {existing} is a file, not a directory")
    for path in (existing, os.path.join(workdir, layout.CHECKPOINTS)):
        if os.path.isdir(path) and not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{path} is not writable; a run writes its checkpoints and metrics "
                             "there: fix its permissions or use another --workdir")


def _write_run_files(workdir: str, run: Run, data: TaskData, resumed: int | None, changes: list[str]) -> None:
    """config.json, train_config.json, the tokenizer, and a record of accepted changes."""
    root = epath.Path(workdir)
    run.model.to_json_file(root / layout.MODEL_CONFIG)
    storage.write_atomically(root / layout.TRAIN_CONFIG, run.config.to_json(indent=2) + "\n")
    if data.tokenizer_path is not None:
        storage.write_atomically(root / layout.TOKENIZER, epath.Path(data.tokenizer_path).read_bytes())
    if changes:
        storage.append_atomically(root / layout.CONFIG_CHANGES, json.dumps({
            "resumed_at_step": resumed, "changes": changes,
            "accepted_by": "accept_changes" if run.config.accept_changes else "resumable"}) + "\n")


def _pretrained_params(path: str, run: Run, program: step_lib.Program) -> Params:
    """Parameters of a pretrained model (any layout `from_pretrained` reads), placed shard by
    shard on the mesh. Heads the checkpoint lacks are initialised (and named in a warning)."""
    model = run.task.model_class.from_pretrained(path, num_labels=run.model.num_labels)
    differences = _differences(model.config, run.model, _COMPUTE_FIELDS | _DROPOUT_FIELDS | _HEAD_FIELDS)
    if differences:
        raise InputError(f"init_from {path} is a different model than the config's "
                         f"({'; '.join(differences)})")
    host = jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    return jax.tree.map(
        lambda x, a, s: jax.make_array_from_callback(a.shape, s, lambda index: x[index].astype(a.dtype)),
        host, program.abstract_state.params, program.state_sharding.params)


def _info(message: str) -> None:
    if jax.process_index() == 0:
        log.info(message)
