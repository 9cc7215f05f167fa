"""Metrics: the analytic FLOP count, the peak table, and the files a run writes (JSONL,
TensorBoard events without TensorFlow, the plot)."""

import json
import math
import struct
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from albert_jax.model import AlbertConfig, AlbertForPreTraining
from albert_jax.tasks import pretraining
from albert_jax.tasks.registry import resolve
from albert_jax.train import data as data_lib
from albert_jax.train import devices, loop, metrics, plot
from albert_jax.train.state import ModelParts

# The in-process runs compile the tiny config's programs once, with the session's other runs.
pytestmark = pytest.mark.usefixtures("in_process_cache")

REQUIRED = {"loss", "mlm_loss", "mlm_accuracy", "sop_loss", "sop_accuracy", "learning_rate",
            "grad_norm", "param_norm", "step_time", "examples_per_sec", "tokens_per_sec",
            "tflops_per_device"}


def matmul_flops(jaxpr) -> int:
    """2*M*N*K over every dot_general of a jaxpr, loop bodies counted once per iteration."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
            lhs, rhs = (v.aval.shape for v in eqn.invars)
            rhs_free = [d for i, d in enumerate(rhs) if i not in rhs_contract and i not in rhs_batch]
            total += 2 * math.prod(lhs) * math.prod(rhs_free)
        repeat = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    total += repeat * matmul_flops(sub.jaxpr)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    total += repeat * matmul_flops(sub)
    return total


@pytest.mark.parametrize("layers, groups, inner", [(2, 1, 1), (6, 1, 1), (4, 2, 2)])
def test_flops_count_every_layer_application(layers, groups, inner):
    config = AlbertConfig.preset("tiny", num_hidden_layers=layers, num_hidden_groups=groups,
                                 inner_group_num=inner, embedding_size=24)
    parts = ModelParts.create(config, AlbertForPreTraining)
    batch, length, predictions = 3, 16, 5
    ids, positions = jnp.zeros((batch, length), jnp.int32), jnp.zeros((batch, predictions), jnp.int32)
    forward = lambda params: parts.merge(params, train=False)(ids, masked_lm_positions=positions)
    traced = jax.make_jaxpr(forward)(parts.abstract_params())
    expected = matmul_flops(traced.jaxpr)
    assert metrics.train_flops_per_example(config, length, predictions) * batch == 3 * expected


@pytest.mark.parametrize("kind, peak", [("TPU v5 lite", 197e12), ("TPU v5e", 197e12), ("TPU v5p", 459e12),
                                        ("TPU v4", 275e12), ("NVIDIA H100 80GB HBM3", 989e12),
                                        ("NVIDIA H100 PCIe", 756e12), ("cpu", None)])
def test_peak_flops_by_device_kind(kind, peak):
    assert devices.peak_flops(kind) == peak
    assert devices.peak_flops(kind, override=1e12) == 1e12


def tensorboard_scalars(data: bytes) -> set[tuple[str, int]]:
    """(tag, step) of each scalar in TensorBoard event file bytes (TFRecord framing of Event protos)."""
    from tensorboardX.proto import event_pb2

    scalars, offset = set(), 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
        scalars.update((value.tag, event.step) for value in event.summary.value)
        offset += 12 + length + 4
    return scalars


def tensorboard_tags(directory) -> set[str]:
    """Scalar tags in the TensorBoard event files of `directory`."""
    return {tag for path in directory.iterdir() for tag, _ in tensorboard_scalars(path.read_bytes())}


def test_run_writes_metrics_tensorboard_plot_and_a_loadable_model(tiny_config, tmp_path, capsys):
    config = tiny_config("--config.num_train_steps=4", "--config.log_every_steps=2",
                         "--config.eval_every_steps=2", "--config.eval_steps=1",
                         "--config.peak_flops_per_device=1e12")
    state = loop.train(resolve(config), str(tmp_path))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval_loss" in r]
    assert [r["step"] for r in train] == [2, 4] and [r["step"] for r in evals] == [2, 4]
    for record in train:
        assert REQUIRED | {"mfu"} <= set(record)
        assert np.isclose(record["mfu"], record["tflops_per_device"])  # peak 1 TFLOP/s
    assert {"eval_loss", "eval_mlm_accuracy", "eval_sop_accuracy", "eval_mlm_accuracy_baseline",
            "eval_sop_accuracy_baseline"} <= set(evals[0])
    assert 0.5 <= evals[0]["eval_sop_accuracy_baseline"] <= 1
    eval_lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("eval step 4")]
    assert len(eval_lines) == 1 and "mlm_accuracy " in eval_lines[0]
    assert (f"sop_accuracy {metrics._fmt(evals[1]['eval_sop_accuracy'])} "
            f"(baseline {metrics._fmt(evals[1]['eval_sop_accuracy_baseline'])})") in eval_lines[0]
    assert "accuracy_baseline" not in eval_lines[0]
    assert REQUIRED | {"eval_loss"} <= tensorboard_tags(tmp_path / "tensorboard")

    png = plot.plot(str(tmp_path))
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    # The workdir is a checkpoint `from_pretrained` reads: the newest step's parameters.
    model = AlbertForPreTraining.from_pretrained(tmp_path)
    jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(nnx.state(model, nnx.Param)),
                 jax.device_get(state.params))


def test_logged_step_times_add_up_to_the_training_time(tiny_config, tmp_path, monkeypatch):
    """An evaluation on a step that is not logged waits for the train steps still queued on the
    device; their time must count as training, not as the pause."""
    events = {"evals": []}
    real_global_batch, real_write = data_lib.global_batch, metrics.MetricsWriter.write

    def first_batch(*args, **kwargs):
        events.setdefault("start", time.perf_counter())
        return real_global_batch(*args, **kwargs)

    def slow_evaluate(program, params, *args, **kwargs):
        # Like a real evaluation, it runs on the devices after the train steps queued there.
        jax.block_until_ready(params)
        start = time.perf_counter()
        time.sleep(0.5)
        events["evals"].append((start, time.perf_counter()))
        return {}, {}

    def write(self, step, values):
        real_write(self, step, values)
        if "step_time" in values:
            events.setdefault("logs", []).append((time.perf_counter(), step, values["step_time"]))

    monkeypatch.setattr(data_lib, "global_batch", first_batch)
    monkeypatch.setattr(loop, "_evaluate", slow_evaluate)
    monkeypatch.setattr(metrics.MetricsWriter, "write", write)
    # Device work heavy and host work light per step, so the host runs ahead of the device
    # between logs.
    config = tiny_config("--config.num_train_steps=20", "--config.log_every_steps=10",
                         "--config.eval_every_steps=5", "--config.eval_steps=1",
                         "--config.checkpoint_every_steps=1000", "--config.global_batch_size=32",
                         "--config.seq_length=128", "--config.model.max_position_embeddings=128",
                         "--config.model.hidden_size=256", "--config.model.intermediate_size=1024",
                         "--config.model.num_hidden_layers=4")
    loop.train(resolve(config), str(tmp_path))
    end, last_step, _ = events["logs"][-1]
    paused = sum(stop - start for start, stop in events["evals"] if stop < end)
    wall = end - events["start"] - paused
    logged = sum(10 * step_time for _, _, step_time in events["logs"])
    assert last_step == 20 and paused > 0
    assert abs(logged - wall) < 0.1 * wall, (logged, wall)


def test_eval_baselines_are_the_most_frequent_target_and_the_majority_label(tiny_config):
    """On the same held-out examples as the accuracies: padding slots and unused packed SOP
    entries (weight 0) count for nothing."""
    task = resolve(tiny_config()).task
    batch = {"masked_lm_ids": jnp.array([[5, 5, 7], [5, 2, 0]]),
             "masked_lm_weights": jnp.array([[1, 1, 1], [1, 1, 0]]),
             # Packed rows: two SOP entries each, the last one unused.
             "sentence_order_label": jnp.array([[0, 1], [0, 1]]),
             "sentence_order_weights": jnp.array([[1, 1], [1, 0]])}
    sums = {**jax.device_get(pretraining.baseline_sums(batch, vocab_size=8)),
            "mlm_nll": 0.0, "mlm_correct": 0.0, "mlm_count": 5.0, "sop_nll": 0.0, "sop_correct": 0.0,
            "examples": 3.0, "tokens": 0.0, "slots": 1.0}
    assert sums["mlm_target_counts"].tolist() == [0, 0, 1, 0, 0, 3, 0, 1]
    evaluated = task.evaluate(sums, {})
    assert evaluated["mlm_accuracy_baseline"] == pytest.approx(3 / 5)
    assert evaluated["sop_accuracy_baseline"] == pytest.approx(2 / 3)  # label 0, of 3 examples


def test_metrics_in_an_object_store_upload_in_the_background(tmp_path, monkeypatch, caplog):
    """In gs:// (faked here: the uploads are recorded), writing a line never waits for an upload,
    `sync` waits for all of them, and a failed upload is a warning that the next line retries."""
    import threading

    from etils import epath

    from albert_jax import storage

    release, uploads, failures = threading.Event(), [], []

    def upload(path, text):
        release.wait(10)  # bounded: an upload in the writer's thread fails the test, not hangs it
        if failures:
            raise failures.pop()
        uploads.append(text)

    monkeypatch.setattr(storage, "is_local", lambda path: False)
    monkeypatch.setattr(storage, "write_atomically", upload)
    lines = metrics._JsonLines(epath.Path(tmp_path) / "metrics.jsonl")
    for i in range(3):
        lines.write(f"{i}\n")  # the first upload is stuck until `release`
    assert uploads == []  # a write that waited for its upload would have made one by now
    release.set()
    lines.sync()
    assert uploads[-1] == "0\n1\n2\n" and len(uploads) <= 3

    failures.append(OSError("bucket unreachable"))
    lines.write("3\n")
    lines.sync()  # returns on the failure
    assert "could not upload" in caplog.text and "bucket unreachable" in caplog.text
    lines.write("4\n")
    lines.close()
    assert uploads[-1] == "0\n1\n2\n3\n4\n"


def test_tensorboard_events_in_an_object_store_go_up_in_the_background_with_the_metrics(
        tmp_path, monkeypatch, caplog):
    """In gs:// (faked: the uploads are recorded), the event files are written locally and
    uploaded by the metrics' background thread, never by the training thread until the end; a
    failed upload is a warning and a later one catches up; `close` uploads every event."""
    import threading

    from albert_jax import storage

    uploads, failures, training = [], [], threading.get_ident()

    def upload(path, data):
        if failures and path.parent.name == "tensorboard":
            raise failures.pop()
        uploads.append((path, data, threading.get_ident()))

    monkeypatch.setattr(storage, "is_local", lambda path: False)
    monkeypatch.setattr(storage, "write_atomically", upload)
    writer = metrics.MetricsWriter(str(tmp_path / "run"), total_steps=6, start_step=0)
    staging = writer.tensorboard.logdir
    failures.append(OSError("bucket unreachable"))
    for step in range(1, 4):
        writer.write(step, {"loss": 1.0 / step})
        writer.sync()
    assert "could not upload the metrics" in caplog.text and "bucket unreachable" in caplog.text
    for step in range(4, 7):
        writer.write(step, {"loss": 1.0 / step})
        writer.sync()
    events = [(path, thread) for path, _, thread in uploads if path.parent.name == "tensorboard"]
    assert events and all(thread != training for _, thread in events), uploads

    writer.close()
    (remote_file,) = {path for path, _, _ in uploads if path.parent.name == "tensorboard"}
    assert remote_file.parent == tmp_path / "run" / "tensorboard"
    last = [data for path, data, _ in uploads if path == remote_file][-1]
    assert tensorboard_scalars(last) == {("loss", step) for step in range(1, 7)}
    assert not Path(staging).exists()
