"""The pretraining loop: one function, `train(config, workdir)`, in commented sections.

Every process of a multi-host run executes the same code; each reads its own rows of the global
batch, and only process 0 writes metrics. A rerun with the same workdir resumes from the newest
checkpoint with the data exactly where it was.

Everything that can be wrong with the user's input (config keys and values, mesh, batch split,
tokenizer, an incompatible workdir) is checked before anything in the workdir is written.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from collections.abc import Sequence

import jax
import ml_collections
import numpy as np
from flax import nnx

from albert_jax.errors import InputError
from albert_jax.model import AlbertConfig, AlbertForPreTraining
from albert_jax.train import checkpoint as checkpoint_lib
from albert_jax.train import config as config_lib
from albert_jax.train import data as data_lib
from albert_jax.train import mesh as mesh_lib
from albert_jax.train import metrics as metrics_lib
from albert_jax.train import step as step_lib
from albert_jax.train.state import Params, TrainState

log = logging.getLogger(__name__)

MODEL_CONFIG_FILE = "config.json"
TRAIN_CONFIG_FILE = "train_config.json"
# AlbertConfig fields that change how the model computes, not what it is: a run may resume or
# start from a pretrained model with other values.
_COMPUTE_FIELDS = frozenset({"dtype", "attention_implementation", "remat_policy", "scan_layers"})
# A pretrained model is another model whatever its dropout was.
_DROPOUT_FIELDS = frozenset({"hidden_dropout_prob", "attention_probs_dropout_prob",
                             "classifier_dropout_prob"})


def train(config: ml_collections.ConfigDict, workdir: str, *,
          devices: Sequence[jax.Device] | None = None) -> TrainState:
    """Pretrains as `config` says, in `workdir`, on `devices` (default: all). Returns the final
    state: at num_train_steps, or earlier when stopped by SIGTERM."""
    # -- Check the input ----------------------------------------------------------------------
    config_lib.validate(config)
    model_config = config_lib.model_config(config)
    mesh = mesh_lib.make_mesh(**config.mesh, devices=devices)
    program = step_lib.build_program(config, mesh)
    _check_workdir(workdir, model_config)
    data = data_lib.PretrainingData(config, model_config)
    pretrained = None
    if config.init_from and not checkpoint_lib.saved_steps(workdir):
        pretrained = _pretrained_params(config.init_from, model_config, program)

    # -- Workdir ---------------------------------------------------------------------------------
    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() == 0:
        model_config.to_json_file(os.path.join(workdir, MODEL_CONFIG_FILE))
        with open(os.path.join(workdir, TRAIN_CONFIG_FILE), "w") as f:
            f.write(config.to_json(indent=2) + "\n")
    checkpoints = checkpoint_lib.Checkpoints(workdir, keep=config.keep_checkpoints)
    rows = mesh_lib.process_rows(program.batch_sharding["sentence_order_label"],
                                 config.global_batch_size)
    train_data = data.iterator("train", rows)

    # -- Train state: resume, start from a pretrained model, or initialise -------------------------
    latest = checkpoints.latest_step()
    if latest is not None:
        _info(f"resuming from {checkpoints.directory}/{latest}")
        state = checkpoints.restore(latest, program.abstract_state, train_data)
    elif pretrained is not None:
        _info(f"starting from the pretrained model {config.init_from}")
        state = program.init_from_params(pretrained)
    else:
        state = program.init()
    start_step = int(jax.device_get(state.step))
    if start_step >= config.num_train_steps:
        _info(f"already trained to step {start_step} (num_train_steps {config.num_train_steps})")
        checkpoints.close()
        train_data.close()
        return state

    # -- Compile ahead of time, so that step times never include compilation ---------------------
    compile_start = time.perf_counter()
    train_step = program.train_step.lower(*program.train_args()).compile()
    flops_per_step = config.global_batch_size * metrics_lib.train_flops_per_example(
        model_config, config.seq_length, config_lib.data_config(config).num_prediction_slots)
    peak = metrics_lib.peak_flops(mesh.devices.flat[0].device_kind, config.peak_flops_per_device)
    num_params = sum(x.size for x in jax.tree.leaves(program.abstract_state.params))
    _info(f"{num_params:,} parameters on mesh {dict(mesh.shape)} of {mesh.devices.size} "
          f"{mesh.devices.flat[0].device_kind} device(s), {jax.process_count()} process(es); "
          f"train step compiled in {time.perf_counter() - compile_start:.1f}s; "
          f"{flops_per_step / 1e12:.3g} TFLOP per step")

    # -- Train -------------------------------------------------------------------------------------
    writer = metrics_lib.MetricsWriter(workdir, total_steps=config.num_train_steps,
                                       start_step=start_step)
    preemption = _Preemption()
    pending: list[dict[str, jax.Array]] = []  # metrics since the last log, still on the devices
    step = start_step
    interval_start = time.perf_counter()
    try:
        while step < config.num_train_steps:
            batch = data_lib.global_batch(next(train_data), program.batch_sharding,
                                          config.global_batch_size)
            state, metrics = train_step(state, batch)
            pending.append(metrics)
            step += 1
            writer.advance()
            last = step == config.num_train_steps

            if step % config.log_every_steps == 0 or last:
                summary = _summarise(jax.device_get(pending))
                seconds = (time.perf_counter() - interval_start) / len(pending)
                summary.update(_throughput(seconds, config, flops_per_step, mesh.devices.size, peak))
                writer.write(step, summary)
                pending = []
            # Step times count training only, not evaluation or saving.
            pause_start = time.perf_counter()
            if config.eval_steps and (step % config.eval_every_steps == 0 or last):
                eval_metrics = _evaluate(program, state.params, data, rows, config)
                if eval_metrics:
                    writer.write(step, eval_metrics)
            stop = preemption.reached(step)
            if step % config.checkpoint_every_steps == 0 or last or stop:
                checkpoints.save(state, train_data)
            if stop:
                _info(f"SIGTERM: saved a checkpoint at step {step}; stopping")
                break
            if pending:
                interval_start += time.perf_counter() - pause_start
            else:
                interval_start = time.perf_counter()
    finally:
        checkpoints.wait()
        checkpoints.close()
        writer.close()
        preemption.close()
        train_data.close()  # stops grain's prefetch threads and worker processes
    return state


# -- Pieces of the loop ------------------------------------------------------------------------------


def _summarise(history: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Means over the steps since the last log; the learning rate and parameter norm as of the
    last step."""
    summary = {k: float(np.mean([h[k] for h in history])) for k in history[0]}
    for k in ("learning_rate", "param_norm"):
        summary[k] = float(history[-1][k])
    return summary


def _throughput(step_seconds: float, config: ml_collections.ConfigDict, flops_per_step: float,
                num_devices: int, peak: float | None) -> dict[str, float]:
    flops_per_device = flops_per_step / step_seconds / num_devices
    out = {
        "step_time": step_seconds,
        "examples_per_sec": config.global_batch_size / step_seconds,
        "tokens_per_sec": config.global_batch_size * config.seq_length / step_seconds,
        "tflops_per_device": flops_per_device / 1e12,
    }
    if peak:
        out["mfu"] = flops_per_device / peak
    return out


def _evaluate(program: step_lib.Program, params: Params, data: data_lib.PretrainingData,
              rows: tuple[int, int], config: ml_collections.ConfigDict) -> dict[str, float]:
    """Losses and accuracies over `eval_steps` held-out batches, the same batches every time."""
    iterator = data.iterator("validation", rows)
    if iterator is None:
        return {}
    totals = None
    for _ in range(config.eval_steps):
        batch = data_lib.global_batch(next(iterator), program.batch_sharding, config.global_batch_size)
        sums = program.eval_step(params, batch)
        totals = sums if totals is None else jax.tree.map(lambda a, b: a + b, totals, sums)
    iterator.close()
    metrics = step_lib.metrics_from_sums(jax.device_get(totals))
    return {f"eval_{k}": float(v) for k, v in metrics.items()}


class _Preemption:
    """Notices SIGTERM. All processes of a multi-host run must stop at the same step, so there
    JAX's coordination service agrees on the step; a single process just sets a flag."""

    def __init__(self):
        self.requested = False
        self.multi_process = jax.process_count() > 1
        self.previous = None
        if not self.multi_process:
            self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def reached(self, step: int) -> bool:
        if self.multi_process:
            from jax.experimental import multihost_utils

            return multihost_utils.reached_preemption_sync_point(step)
        return self.requested

    def close(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


# -- Input checks ------------------------------------------------------------------------------------


def _differences(old: AlbertConfig, new: AlbertConfig, ignore: frozenset[str]) -> list[str]:
    return [f"{f.name} {getattr(old, f.name)!r} -> {getattr(new, f.name)!r}"
            for f in dataclasses.fields(AlbertConfig)
            if f.name not in ignore and getattr(old, f.name) != getattr(new, f.name)]


def _check_workdir(workdir: str, model_config: AlbertConfig) -> None:
    """A workdir holding another model's run is refused before anything is written to it."""
    path = os.path.join(workdir, MODEL_CONFIG_FILE)
    if not os.path.exists(path):
        return
    differences = _differences(AlbertConfig.from_json_file(path), model_config, _COMPUTE_FIELDS)
    if differences:
        raise InputError(f"workdir {workdir} holds a run of a different model ({'; '.join(differences)}); "
                         "use another --workdir or the same model config")


def _pretrained_params(path: str, model_config: AlbertConfig, program: step_lib.Program) -> Params:
    """Parameters of a pretrained model (any layout `from_pretrained` reads), placed shard by
    shard on the mesh."""
    model = AlbertForPreTraining.from_pretrained(path)
    differences = _differences(model.config, model_config, _COMPUTE_FIELDS | _DROPOUT_FIELDS)
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
