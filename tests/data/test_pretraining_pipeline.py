"""The grain pretraining pipeline (albert_jax.data.pipeline): batch layout, determinism,
resumption (in memory, with worker processes, through orbax), sharding, and no TensorFlow."""

from __future__ import annotations

import functools
from pathlib import Path

import grain
import numpy as np
import orbax.checkpoint as ocp
import pytest

from albert_jax.data.pipeline import make_pretraining_iterator
from albert_jax.data.pretraining import PretrainingDataConfig, Vocab
from albert_jax.errors import InputError
from tests.data.pretraining_corpus import (
    NUM_SPECIAL,
    TaggedDocuments,
    synthetic_documents,
    synthetic_vocab,
)
from tests.without_tensorflow import run_without_tensorflow

CONFIG = PretrainingDataConfig(max_seq_length=64, seed=7)
VOCAB = synthetic_vocab()
DOCUMENTS = synthetic_documents(200)
FIELDS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "sentence_order_label",
)


def iterator(source=DOCUMENTS, config=CONFIG, **kwargs):
    kwargs = {"batch_size": 8, "shard_index": 0, "shard_count": 1, **kwargs}
    return make_pretraining_iterator(source, config, VOCAB, **kwargs)


def take(it, count: int) -> list[dict[str, np.ndarray]]:
    # Copies: with workers, batches live in shared memory that grain recycles.
    return [{k: np.array(v) for k, v in next(it).items()} for _ in range(count)]


def assert_same(batches, others):
    assert len(batches) == len(others)
    for batch, other in zip(batches, others):
        assert batch.keys() == other.keys()
        for key in batch:
            np.testing.assert_array_equal(batch[key], other[key], err_msg=key)


def home_documents(batch: dict[str, np.ndarray]) -> np.ndarray:
    """For TaggedDocuments: the document each example's segment A came from."""
    ids = batch["input_ids"].copy()
    rows = np.arange(len(ids))[:, None]
    ids[rows, batch["masked_lm_positions"]] = np.where(
        batch["masked_lm_weights"] == 1, batch["masked_lm_ids"], ids[rows, batch["masked_lm_positions"]]
    )
    return ids[:, 1] - NUM_SPECIAL


def test_batches_have_the_documented_fields():
    config = PretrainingDataConfig(max_seq_length=64, max_predictions_per_seq=10, do_permutation=True)
    (batch,) = take(iterator(config=config, batch_size=5), 1)
    assert tuple(sorted(batch)) == tuple(sorted(FIELDS))
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert batch[key].shape == (5, 64) and batch[key].dtype == np.int32
    for key in ("masked_lm_positions", "masked_lm_ids", "masked_lm_weights"):
        assert batch[key].shape == (5, 20) and batch[key].dtype == np.int32
    assert batch["sentence_order_label"].shape == (5,)
    assert batch["sentence_order_label"].dtype == np.int32
    weights = batch["masked_lm_weights"]
    assert set(np.unique(weights)) <= {0, 1}
    assert (np.sort(weights, axis=1)[:, ::-1] == weights).all()  # padding comes last
    assert (batch["masked_lm_positions"][weights == 0] == 0).all()


def test_same_seed_same_batches_other_seed_other_masks():
    first = take(iterator(), 6)
    assert_same(first, take(iterator(), 6))
    other = take(iterator(config=PretrainingDataConfig(max_seq_length=64, seed=8)), 6)
    assert not np.array_equal(
        np.stack([b["masked_lm_positions"] for b in first]),
        np.stack([b["masked_lm_positions"] for b in other]),
    )


def test_passes_over_the_data_differ():
    # Five documents, so the first batches already run over several passes.
    source = synthetic_documents(5)
    batches = take(iterator(source=source, batch_size=4, shuffle_window=1, num_epochs=2), 20)
    rows = [tuple(row) for b in batches for row in b["masked_lm_positions"]]
    assert len(set(rows)) > 0.9 * len(rows)


@pytest.mark.parametrize("worker_count", [0, 2])
def test_restored_iterator_continues_exactly(worker_count):
    it = iterator(worker_count=worker_count)
    try:
        take(it, 3)
        state = it.get_state()
        expected = take(it, 4)
    finally:
        if worker_count:
            it.close()
    resumed = iterator(worker_count=worker_count)
    try:
        resumed.set_state(state)
        assert_same(take(resumed, 4), expected)
    finally:
        if worker_count:
            resumed.close()
    # Starting workers must not mark the process's absl flags as parsed (the caller's app may
    # parse its own flags later).
    from absl import flags

    assert not flags.FLAGS.is_parsed()


def test_orbax_checkpoint_restores_the_iterator(tmp_path: Path):
    it = iterator()
    take(it, 2)
    with ocp.CheckpointManager(tmp_path / "checkpoints") as manager:
        manager.save(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        manager.wait_until_finished()
    expected = take(it, 3)

    resumed = iterator()
    with ocp.CheckpointManager(tmp_path / "checkpoints") as manager:
        manager.restore(2, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(resumed)))
    assert_same(take(resumed, 3), expected)


def test_each_shard_reads_its_own_documents_and_resumes():
    source = TaggedDocuments(64)
    seen = []
    for shard in range(2):
        shard_iterator = functools.partial(
            iterator, source=source, shard_index=shard, shard_count=2, num_epochs=1, batch_size=1
        )
        batches = list(shard_iterator())
        seen.append({int(d) for b in batches for d in home_documents(b)})
        it = shard_iterator()
        take(it, 5)
        state = it.get_state()
        resumed = shard_iterator()
        resumed.set_state(state)
        assert_same(take(resumed, 5), batches[5:10])
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(64))
    assert abs(len(seen[0]) - len(seen[1])) <= 1


def test_documents_are_reshuffled_every_pass():
    source = TaggedDocuments(40)
    batches = list(iterator(source=source, num_epochs=2, batch_size=1, shuffle_window=1))
    order = [int(home_documents(b)[0]) for b in batches]
    visits = [d for i, d in enumerate(order) if i == 0 or d != order[i - 1]]
    assert len(visits) == 80
    assert sorted(visits[:40]) == sorted(visits[40:]) == list(range(40))
    assert visits[:40] != visits[40:]


def test_examples_of_one_document_are_spread_over_batches():
    # At seq 64 a document gives about a dozen examples, one after another.
    source = TaggedDocuments(64)

    def same_document_neighbours(shuffle_window: int) -> float:
        batches = take(iterator(source=source, batch_size=16, shuffle_window=shuffle_window), 8)
        homes = np.concatenate([home_documents(b) for b in batches])
        return float(np.mean(homes[1:] == homes[:-1]))

    assert same_document_neighbours(1) > 0.5
    assert same_document_neighbours(1024) < 0.1


def test_default_shard_is_this_jax_process():
    explicit = take(iterator(), 2)
    assert_same(take(make_pretraining_iterator(DOCUMENTS, CONFIG, VOCAB, batch_size=8), 2), explicit)


def test_bad_arguments_are_input_errors():
    for kwargs in (
        {"shard_index": 2, "shard_count": 2},
        {"shard_index": 0, "shard_count": None},
        {"batch_size": 0},
        {"worker_count": -1},
    ):
        with pytest.raises(InputError):
            iterator(**kwargs)
    with pytest.raises(InputError):
        iterator(source=[])




def test_prepared_dataset_streams_without_tensorflow(tiny_tokenizer, tiny_prepared_dir, tmp_path):
    run_without_tensorflow(f"""
        from albert_jax.data.pipeline import make_pretraining_iterator
        from albert_jax.data.documents import load_documents
        from albert_jax.data.pretraining import PretrainingDataConfig, Vocab
        from albert_jax.data.tokenizer import Tokenizer

        tokenizer = Tokenizer.load({str(tiny_tokenizer.path)!r})
        source = load_documents({str(tiny_prepared_dir)!r}, "train", tokenizer)
        it = make_pretraining_iterator(
            source, PretrainingDataConfig(max_seq_length=128), Vocab.from_tokenizer(tokenizer),
            batch_size=4, shard_index=0, shard_count=1, worker_count=1,
        )
        batch = next(it)
        it.close()
        assert batch["input_ids"].shape == (4, 128), batch["input_ids"].shape
        """, tmp_path)


def test_vocab_from_tokenizer(tiny_tokenizer):
    vocab = Vocab.from_tokenizer(tiny_tokenizer)
    assert (vocab.cls_id, vocab.sep_id, vocab.mask_id, vocab.pad_id) == (2, 3, 4, 0)
    assert vocab.size == tiny_tokenizer.vocab_size == len(vocab.word_start)
    assert vocab.word_start[tiny_tokenizer.piece_to_id("▁the")]
