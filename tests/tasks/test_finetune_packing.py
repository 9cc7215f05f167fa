"""Packed fine-tuning (`data.packing`): packed rows give the padded rows' loss, gradients and
per-example outputs; a packed run learns and predicts one row per example in order; tasks that
keep one example per row refuse it."""

from __future__ import annotations

import dataclasses
import json

import jax
import numpy as np
import pytest
from flax import nnx

from albert_jax.cli import main
from albert_jax.model import AlbertConfig
from albert_jax.tasks import finetune
from albert_jax.tasks.classification import TextClassificationTask
from albert_jax.tasks.finetune import EXAMPLE_INDEX, Encoded, FinetuneData
from albert_jax.tasks.tagging import TokenTaggingTask
from tests.tasks.test_finetune import CLASSIFICATION, FAST
from tests.tasks.test_finetune_bad_input import fails_cleanly

# In-process commands compile through the session's cache (not the user's albert_jax cache).
pytestmark = pytest.mark.usefixtures("in_process_cache")
LENGTH, EXAMPLES, PER_ROW, PAD, CLS = 32, 24, 4, 0, 2
# More rows than the examples need: the batch ends with empty rows, which must count for nothing.
ROWS = 12


def toy_examples(kind: str) -> Encoded:
    """EXAMPLES examples of 3 to 20 tokens, each starting with [CLS] and mostly of a pair (token
    types 0 then 1), with labels of `kind`: "classes", "scores" or "tags" (per token)."""
    rng = np.random.default_rng(0)
    tokens = {name: [] for name in ("input_ids", "attention_mask", "token_type_ids")}
    tags, starts = [], []
    for _ in range(EXAMPLES):
        length = int(rng.integers(3, 21))
        ids = rng.integers(3, 256, length).astype(np.int32)
        ids[0] = CLS
        types = (np.arange(length) >= rng.integers(1, length)).astype(np.int32)
        tokens["input_ids"].append(ids)
        tokens["attention_mask"].append(np.ones(length, np.int32))
        tokens["token_type_ids"].append(types)
        starts.append((rng.random(length) < 0.6).astype(np.int32) * (np.arange(length) > 0))
        tags.append(rng.integers(0, 3, length).astype(np.int32))
    pad = {"input_ids": PAD, "attention_mask": 0, "token_type_ids": 0}
    if kind == "tags":
        tokens.update(labels=tags, word_starts=starts)
        return Encoded(tokens, {}, pad | {"labels": 0, "word_starts": 0})
    labels = (rng.normal(size=EXAMPLES).astype(np.float32) if kind == "scores"
              else rng.integers(0, 3, EXAMPLES).astype(np.int32))
    return Encoded(tokens, {"labels": labels}, pad)


def toy_task(kind: str):
    """A packed task of `kind` over a tiny float32 model without dropout."""
    labels = None if kind == "scores" else ("a", "b", "c")
    cls = TokenTaggingTask if kind == "tags" else TextClassificationTask
    num_labels, names = cls.head_labels(labels)
    model = AlbertConfig.preset("tiny", max_position_embeddings=LENGTH, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0, classifier_dropout_prob=0.0,
                                num_labels=num_labels, label_names=names)
    return cls(kind, labels, (), (), None, ("", True), model, LENGTH, 0, None, max_examples_per_row=PER_ROW)


def one_batch(task, encoded: Encoded) -> dict[str, np.ndarray]:
    """All of `encoded` in one batch of the task's contract: padded rows, or packed ones."""
    data = FinetuneData(encoded, None, buckets=task.lengths, global_batch_size=ROWS if task.packed else EXAMPLES,
                        seed=0, tokenizer_path=None, max_examples_per_row=task.max_examples_per_row)
    (batch,) = data.batches_of(encoded, (0, ROWS if task.packed else EXAMPLES))
    spec = task.example_spec(LENGTH)
    assert {name: value.shape[1:] for name, value in batch.items()} == {n: s for n, (s, _) in spec.items()}
    return batch


@pytest.mark.parametrize("kind", ["classes", "scores", "tags"])
def test_packed_loss_gradients_and_outputs_equal_padded(kind):
    """float32, no dropout: attention leaking across examples, positions that do not restart, an
    output read at the wrong [CLS] or a label given to the wrong example all change the loss."""
    packed_task = toy_task(kind)
    padded_task = dataclasses.replace(packed_task, max_examples_per_row=0)
    encoded = toy_examples(kind)
    packed, padded = one_batch(packed_task, encoded), one_batch(padded_task, encoded)
    rows_used = int(np.sum(np.any(packed[EXAMPLE_INDEX] >= 0, axis=1)))
    assert rows_used < EXAMPLES / 2 and rows_used < ROWS, "several examples per row, then empty rows"
    model = packed_task.model_class(packed_task.model, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def run(task, batch):
        def loss(params):
            sums = task.sums(nnx.merge(graphdef, params, rest), batch, None)
            return task.loss(sums, task.normalisers(batch)), sums
        (value, sums), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return value, sums, grads, task.eval_outputs(nnx.merge(graphdef, params, rest), batch)[1]

    padded_loss, padded_sums, padded_grads, padded_out = jax.jit(run, static_argnums=0)(padded_task, padded)
    packed_loss, packed_sums, packed_grads, packed_out = jax.jit(run, static_argnums=0)(packed_task, packed)
    padded_out, packed_out = (finetune.real_rows(jax.device_get(out)) for out in (padded_out, packed_out))
    assert float(packed_sums["examples"]) == float(padded_sums["examples"]) == EXAMPLES
    for name in ("nll", "squared_error", "correct", "count", "tokens"):
        np.testing.assert_allclose(packed_sums[name], padded_sums[name], rtol=2e-6, err_msg=name)
    np.testing.assert_allclose(packed_loss, padded_loss, rtol=1e-6)
    for path, a, b in zip(jax.tree.leaves_with_path(padded_grads), jax.tree.leaves(padded_grads),
                          jax.tree.leaves(packed_grads)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-7, err_msg=jax.tree_util.keystr(path[0]))
    # One output per example, in example order, as the padded rows give them (per-token outputs
    # up to the example's end: a padded row also predicts tags for its padding).
    np.testing.assert_array_equal(packed_out[EXAMPLE_INDEX], np.arange(EXAMPLES))
    inside = np.arange(LENGTH) < encoded.lengths()[:, None]
    for name, value in padded_out.items():
        value = np.where(inside, value, 0) if value.shape[1:] == (LENGTH,) else value
        np.testing.assert_allclose(packed_out[name], value, rtol=1e-5, atol=1e-6, err_msg=name)


def test_per_example_tokens_cut_each_example_out_of_its_row():
    batch = {"segment_ids": np.array([[1, 1, 1, 2, 2, 0]]), "cls_positions": np.array([[0, 3, 0]])}
    values = np.array([[5, 6, 7, 8, 9, 4]])
    np.testing.assert_array_equal(finetune.per_example_tokens(values, batch),
                                  [[[5, 6, 7, 0, 0, 0], [8, 9, 0, 0, 0, 0], [0] * 6]])


def test_the_padding_report_counts_what_each_layout_pads():
    encoded = toy_examples("classes")
    lengths = encoded.lengths()
    data = FinetuneData(encoded, None, buckets=(LENGTH,), global_batch_size=EXAMPLES, seed=0,
                        tokenizer_path=None, max_examples_per_row=PER_ROW)
    report = data.padding_report()
    rows = report["packed_rows"]
    assert report["examples"] == EXAMPLES and report["examples_per_row"] == EXAMPLES / rows
    # One batch of every example: an unpacked run pads it to the bucket of its longest (20 -> 32).
    assert lengths.max() == 20
    np.testing.assert_allclose(report["padded"], 1 - lengths.sum() / (EXAMPLES * 32))
    np.testing.assert_allclose(report["packed"], 1 - lengths.sum() / (rows * LENGTH))
    assert report["packed"] < report["padded"] / 2


def test_packed_training_batches_resume_exactly():
    """The packer's open rows are part of the iterator state, so a resumed run trains on the rows an
    uninterrupted one would have."""
    encoded = toy_examples("classes")
    data = FinetuneData(encoded, None, buckets=(LENGTH,), global_batch_size=4, seed=1, tokenizer_path=None,
                        max_examples_per_row=PER_ROW)
    iterator = data.train_iterator((0, 4))
    for _ in range(3):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    resumed = data.train_iterator((0, 4))
    resumed.set_state(state)
    for batch in expected:
        got = next(resumed)
        for name in batch:
            np.testing.assert_array_equal(got[name], batch[name], err_msg=name)


# -- through the CLI -----------------------------------------------------------------------------

PACKED = ["--config.data.packing=true", "--config.data.max_examples_per_row=4"]


@pytest.fixture(scope="module")
def packed_run(tmp_path_factory, pretrained_dir, sentiment_files):
    train, dev = sentiment_files
    workdir = tmp_path_factory.mktemp("packed_run")
    fast = [arg for arg in FAST if "num_train_steps" not in arg and "global_batch_size" not in arg]
    assert main(["finetune", "--config", CLASSIFICATION, "--workdir", str(workdir),
                 f"--config.init_from={pretrained_dir}", f"--config.data.train_file={train}",
                 f"--config.data.dev_file={dev}", "--config.data.text_column=sentence", *fast, *PACKED,
                 "--config.global_batch_size=8", "--config.num_train_steps=80",
                 # What is tested is packing; without dropout no random stream decides the outcome.
                 "--config.model.classifier_dropout_prob=0.0"]) == 0
    return workdir


def test_a_packed_run_learns_and_predicts_every_example_in_order(packed_run, sentiment_files, tmp_path):
    results = json.loads((packed_run / "eval_results.json").read_text())
    assert results["best"]["accuracy"] >= 0.9, results
    dev = [line.split("\t") for line in sentiment_files[1].read_text().splitlines()[1:]]
    predictions = [json.loads(line) for line in (packed_run / "dev_predictions.jsonl").read_text().splitlines()]
    assert [p["guid"] for p in predictions] == [f"dev-{i}" for i in range(len(dev))]
    assert [p["gold"] for p in predictions] == [label for _, label in dev]
    records = [json.loads(line) for line in (packed_run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if "examples" in r]
    # 8 rows of 32 tokens hold 2 to 4 of the toy sentences (6 to 12 tokens) each.
    assert trained and all(16 < r["examples"] <= 32 for r in trained)
    assert all(r["examples_per_sec"] == pytest.approx(r["examples"] / r["step_time"]) for r in trained)
    assert all(r["padding_fraction"] < 0.25 for r in trained), trained
    # `predict` on a packed run packs too, and gives the same labels in the same order.
    assert main(["predict", "--workdir", str(packed_run), "--input", str(sentiment_files[1]),
                 "--output", str(tmp_path / "out.jsonl")]) == 0
    again = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["label"] for r in again] == [p["label"] for p in predictions]


def test_race_refuses_packing(capsys, tmp_path, pretrained_dir, race_dir):
    fails_cleanly(capsys, tmp_path / "run", ["--config", "finetune/race.py", f"--config.init_from={pretrained_dir}",
                                             f"--config.data_dir={race_dir}", *PACKED],
                  "data.packing: race/all keeps one example per row")


def test_squad_refuses_packing(capsys, tmp_path, pretrained_dir):
    qa = {"id": "q0", "question": "which one", "answers": [{"text": "good", "answer_start": 8}]}
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"version": "1.1", "data": [
        {"title": "toy", "paragraphs": [{"context": "the cat good mat", "qas": [qa]}]}]}))
    fails_cleanly(capsys, tmp_path / "run",
                  ["--config", "finetune/squad.py:v1.1", f"--config.init_from={pretrained_dir}",
                   f"--config.data.train_file={train}", *PACKED],
                  "data.packing: squad/v1.1 keeps one example per row")
