"""`albert-jax data inspect`: decoded examples with marked masks, and JSON batch fields."""

from __future__ import annotations

import json

import numpy as np
import pytest

from albert_jax.cli import main
from albert_jax.data.documents import load_documents
from albert_jax.data.pipeline import make_pretraining_iterator
from albert_jax.data.pretraining import PretrainingDataConfig, Vocab

# The batch fields the issue specifies, in order.
BATCH_FIELDS = ("input_ids", "attention_mask", "token_type_ids", "masked_lm_positions", "masked_lm_ids",
                "masked_lm_weights", "sentence_order_label")


def inspect(capsys, prepared_dir, tokenizer, *options: str) -> tuple[int, str, str]:
    code = main(["data", "inspect", str(prepared_dir), "--tokenizer", str(tokenizer.path), *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_lines_are_the_training_examples(capsys, tiny_tokenizer, tiny_prepared_dir):
    options = ("--num-examples", "3", "--max-seq-length", "64", "--seed", "5", "--json")
    code, out, _ = inspect(capsys, tiny_prepared_dir, tiny_tokenizer, *options)
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3
    # The same examples as a one-process training run with that seed and length.
    it = make_pretraining_iterator(
        load_documents(tiny_prepared_dir),
        PretrainingDataConfig(max_seq_length=64, seed=5),
        Vocab.from_tokenizer(tiny_tokenizer),
        batch_size=3,
        shard_index=0,
        shard_count=1,
    )
    batch = next(it)
    for row, line in enumerate(lines):
        example = json.loads(line)
        assert list(example) == list(BATCH_FIELDS)
        assert set(BATCH_FIELDS) == set(batch)
        for key in BATCH_FIELDS:
            np.testing.assert_array_equal(np.array(example[key]), batch[key][row], err_msg=key)
        assert len(example["input_ids"]) == 64 and len(example["masked_lm_ids"]) == 20


def test_text_marks_every_masked_position(capsys, tiny_tokenizer, tiny_prepared_dir):
    options = ("--num-examples", "2", "--max-seq-length", "96", "--seed", "1")
    code, out, _ = inspect(capsys, tiny_prepared_dir, tiny_tokenizer, *options)
    assert code == 0
    headers = [line for line in out.splitlines() if line.startswith("example ")]
    assert len(headers) == 2
    texts = [line for line in out.splitlines() if line.startswith("[CLS]")]
    assert len(texts) == 2
    for header, text in zip(headers, texts):
        predictions = int(header.split(" predictions")[0].rsplit(" ", 1)[1])
        assert predictions > 0
        assert text.count("→") == predictions
        assert text.count("[SEP]") == 2 and text.endswith("[SEP]")
        assert "{[MASK]→" in text


@pytest.mark.parametrize(
    "options, message",
    [
        (("--max-seq-length", "4"), "max_seq_length"),
        (("--seed", "-1"), "seed"),
    ],
)
def test_bad_options_are_one_line_errors(capsys, tiny_tokenizer, tiny_prepared_dir, options, message):
    code, out, err = inspect(capsys, tiny_prepared_dir, tiny_tokenizer, *options)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_missing_dataset_is_an_error(capsys, tiny_tokenizer, tmp_path):
    code, _, err = inspect(capsys, tmp_path / "absent", tiny_tokenizer)
    assert code == 2 and "not a prepared dataset" in err
