"""`albert-jax data inspect`: print the pretraining examples a run would train on.

The examples come from the training pipeline itself (`make_pretraining_iterator`, one process,
training split), so they are exactly the first examples of a single-process run with the same
seed and sequence length; other options keep their defaults. `--padding` instead reports the
share of padding in those examples, one per row and packed (`data.packing`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

from albert_jax.data.documents import TRAIN_SPLIT, load_documents
from albert_jax.data.pipeline import make_pretraining_iterator
from albert_jax.data.pretraining import PretrainingDataConfig, Vocab, example_shapes
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError

LEGEND = (
    "Masked positions read {seen→target}: `seen` is what the model reads there ([MASK], a "
    "random piece, or the piece itself) and `target` the piece it must predict."
)


def run(args: argparse.Namespace) -> int:
    """Prints `args.num_examples` examples of the prepared dataset `args.dir`."""
    if args.num_examples < 1:
        raise InputError(f"--num-examples must be positive, got {args.num_examples}")
    tokenizer = Tokenizer.load(args.tokenizer)
    source = load_documents(args.dir, TRAIN_SPLIT, tokenizer)
    config = PretrainingDataConfig(max_seq_length=args.max_seq_length, seed=args.seed)
    if args.padding:
        report = padding_report(source, config, Vocab.from_tokenizer(tokenizer), args.num_examples)
        print(json.dumps(report) if args.json else (
            f"padding at length {config.max_seq_length} over {report['examples']} examples: "
            f"{report['padded']:.1%} one example per row, {report['packed']:.1%} packed "
            f"({report['packed_rows']} rows of up to {config.max_examples_per_row} examples)"))
        return 0
    examples = _rows(source, config, Vocab.from_tokenizer(tokenizer))
    if not args.json:
        print(LEGEND)
    for index in range(args.num_examples):
        example = {key: value[0] for key, value in next(examples).items()}
        if args.json:
            print(json.dumps({key: example[key].tolist() for key in example_shapes(config)}))
        else:
            print(f"\n{describe(example, index)}\n{render(example, tokenizer)}")
    return 0


def _rows(source, config: PretrainingDataConfig, vocab: Vocab):
    return make_pretraining_iterator(source, config, vocab, batch_size=1, shard_index=0, shard_count=1,
                                     prefetch=0)


def padding_report(source, config: PretrainingDataConfig, vocab: Vocab, num_examples: int) -> dict:
    """The share of padding tokens in the first `num_examples` training examples, one example
    per row and packed (the same examples, up to the last packed row's)."""
    real, rows, examples = 0, 0, 0
    for row in _rows(source, dataclasses.replace(config, packing=True), vocab):
        real += int(row["attention_mask"].sum())
        rows += 1
        examples += int(row["sentence_order_weights"].sum())
        if examples >= num_examples:
            break
    padded_rows = _rows(source, config, vocab)
    padded_real = sum(int(next(padded_rows)["attention_mask"].sum()) for _ in range(examples))
    length = config.max_seq_length
    return {"max_seq_length": length, "examples": examples,
            "padded": 1 - padded_real / (examples * length), "packed_rows": rows,
            "packed": 1 - real / (rows * length)}


def describe(example: dict[str, np.ndarray], index: int) -> str:
    """One header line: lengths, prediction count and the sentence-order label."""
    order = "B before A, or B from another document" if example["sentence_order_label"] else "in order"
    return (
        f"example {index}: {int(example['attention_mask'].sum())} tokens, "
        f"{int(example['masked_lm_weights'].sum())} predictions, "
        f"sentence_order_label={int(example['sentence_order_label'])} ({order})"
    )


def render(example: dict[str, np.ndarray], tokenizer: Tokenizer) -> str:
    """The example's text as decoded pieces, each masked position as {seen→target}."""
    length = int(example["attention_mask"].sum())
    ids = example["input_ids"][:length]
    weights = example["masked_lm_weights"].astype(bool)
    targets = dict(zip(example["masked_lm_positions"][weights].tolist(), example["masked_lm_ids"][weights].tolist()))
    parts: list[str] = []
    run_start = 0
    for position in sorted(targets):
        parts.append(tokenizer.decode(ids[run_start:position]))
        seen, target = tokenizer.id_to_piece(ids[position]), tokenizer.id_to_piece(targets[position])
        parts.append(f"{{{seen}→{target}}}")
        run_start = position + 1
    parts.append(tokenizer.decode(ids[run_start:]))
    return " ".join(part.strip() for part in parts if part.strip())
