"""Sequence packing (`data.packing`): packed rows hold the same examples as padded rows, and the
pretraining loss and its gradients over them are the same."""

from __future__ import annotations

import dataclasses

import grain
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from albert_jax.data import packing
from albert_jax.data.pipeline import make_pretraining_iterator
from albert_jax.data.pretraining import PretrainingDataConfig, document_examples, example_shapes
from albert_jax.model import AlbertConfig, AlbertForPreTraining
from albert_jax.model.models import _positions_in_segments
from albert_jax.tasks.pretraining import metrics_from_sums, pretraining_sums
from tests.data.pretraining_corpus import VOCAB_SIZE, synthetic_documents, synthetic_vocab

LENGTH = 64
CONFIG = PretrainingDataConfig(max_seq_length=LENGTH, max_predictions_per_seq=8, seed=3,
                               short_seq_prob=1.0, max_examples_per_row=4)
PACKED = dataclasses.replace(CONFIG, packing=True)
VOCAB = synthetic_vocab()
DOCUMENTS = synthetic_documents(12)


@pytest.fixture(scope="module")
def examples() -> list[dict[str, np.ndarray]]:
    """Padded examples, many short (every document draws a short target length), as the pipeline makes them."""
    made = [e for i, d in enumerate(DOCUMENTS) for e in document_examples(d, DOCUMENTS, i, 0, CONFIG, VOCAB)]
    assert len(made) > 30
    return made


@pytest.fixture(scope="module")
def packed_rows(examples) -> list[dict[str, np.ndarray]]:
    rows = list(packing.pack(grain.MapDataset.source(examples).to_iter_dataset(), PACKED, VOCAB.pad_id,
                             num_packing_bins=8))
    assert len(rows) < len(examples)
    return rows


def stack(rows):
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def unpack(row: dict[str, np.ndarray]) -> list[tuple]:
    """The examples of a packed row, each as (tokens, token types, positions, masked positions
    within it, their ids, label), read the way the model reads them."""
    out = []
    for entry in np.flatnonzero(row["sentence_order_weights"]):
        segment = entry + 1
        tokens = np.flatnonzero(row["segment_ids"] == segment)
        start = row["cls_positions"][entry]
        assert tokens[0] == start and np.all(np.diff(tokens) == 1), "an example is one run of tokens"
        np.testing.assert_array_equal(row["position_ids"][tokens], np.arange(len(tokens)))
        predicted = (row["masked_lm_weights"] == 1) & np.isin(row["masked_lm_positions"], tokens)
        out.append((tuple(row["input_ids"][tokens]), tuple(row["token_type_ids"][tokens]),
                    tuple(row["masked_lm_positions"][predicted] - start),
                    tuple(row["masked_lm_ids"][predicted]), int(row["sentence_order_label"][entry])))
    return out


def as_tuple(example: dict[str, np.ndarray]) -> tuple:
    length, count = int(example["attention_mask"].sum()), int(example["masked_lm_weights"].sum())
    return (tuple(example["input_ids"][:length]), tuple(example["token_type_ids"][:length]),
            tuple(example["masked_lm_positions"][:count]), tuple(example["masked_lm_ids"][:count]),
            int(example["sentence_order_label"]))


def test_packed_rows_hold_every_example_unchanged(examples, packed_rows):
    for row in packed_rows:
        assert {name: row[name].shape for name in row} == example_shapes(PACKED)
        assert np.all(row["input_ids"][row["segment_ids"] == 0] == VOCAB.pad_id)
        np.testing.assert_array_equal(row["attention_mask"], row["segment_ids"] > 0)
        assert np.sum(row["masked_lm_weights"]) == np.sum(row["masked_lm_positions"] > 0)
    unpacked = sorted(e for row in packed_rows for e in unpack(row))
    assert unpacked == sorted(as_tuple(e) for e in examples)


def test_packing_removes_padding(examples, packed_rows):
    padded = 1 - sum(int(e["attention_mask"].sum()) for e in examples) / (len(examples) * LENGTH)
    packed = 1 - sum(int(r["attention_mask"].sum()) for r in packed_rows) / (len(packed_rows) * LENGTH)
    assert packed < 0.85 * padded, (padded, packed)


def test_packed_loss_and_gradients_equal_padded(examples, packed_rows):
    """float32, no dropout: attention leaking across examples, positions that do not restart, or
    a prediction or SOP label attached to the wrong example all change the loss."""
    config = AlbertConfig.preset("tiny", vocab_size=VOCAB_SIZE, max_position_embeddings=LENGTH,
                                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                 classifier_dropout_prob=0.0)
    model = AlbertForPreTraining(config, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def loss_and_grads(params, batch):
        def loss(params):
            sums = pretraining_sums(nnx.merge(graphdef, params, rest), batch, None)
            return metrics_from_sums(sums)["loss"], sums
        return jax.value_and_grad(loss, has_aux=True)(params)

    (padded_loss, padded_sums), padded_grads = loss_and_grads(params, stack(examples))
    (packed_loss, packed_sums), packed_grads = loss_and_grads(params, stack(packed_rows))
    assert float(packed_sums["examples"]) == len(examples)
    for name in set(padded_sums) - {"slots"}:  # the same tokens in fewer slots
        np.testing.assert_allclose(packed_sums[name], padded_sums[name], rtol=2e-6, err_msg=name)
    padded_metrics, packed_metrics = metrics_from_sums(padded_sums), metrics_from_sums(packed_sums)
    assert packed_metrics["examples"] == padded_metrics["examples"] == len(examples)
    assert packed_metrics["padding_fraction"] < padded_metrics["padding_fraction"]
    np.testing.assert_allclose(packed_loss, padded_loss, rtol=1e-6)
    for path, a, b in zip(jax.tree.leaves_with_path(padded_grads), jax.tree.leaves(padded_grads),
                          jax.tree.leaves(packed_grads)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-7, err_msg=jax.tree_util.keystr(path[0]))


def test_positions_restart_per_segment_by_default():
    segments = jnp.array([[1, 1, 1, 2, 2, 3, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(_positions_in_segments(segments),
                                  [[0, 1, 2, 0, 1, 0, 0, 1], list(range(8))])


def test_pipeline_packs_and_resumes():
    def iterator():
        return make_pretraining_iterator(DOCUMENTS, PACKED, VOCAB, batch_size=4, shard_index=0,
                                         shard_count=1, shuffle_window=8, prefetch=0)

    it = iterator()
    next(it)
    state = it.get_state()
    expected = [next(it) for _ in range(3)]
    resumed = iterator()
    resumed.set_state(state)
    for batch in expected:
        got = next(resumed)
        assert set(got) == set(example_shapes(PACKED))
        for name in batch:
            np.testing.assert_array_equal(got[name], batch[name], err_msg=name)
