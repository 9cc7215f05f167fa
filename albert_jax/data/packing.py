"""Sequence packing: several examples per row instead of one example padded to the row.

Real examples are mostly shorter than the row (the original makes 10% of pretraining examples
short on purpose, a document's last example is often short, and GLUE sentences are a few dozen
tokens), so padded rows spend much of their compute on padding. Packing places whole examples
one after another in a row with grain's first-fit packer
(`grain.experimental.FirstFitPackIterDataset`). Every packed row carries `segment_ids` (1, 2, ...
per example, 0 for padding), `position_ids` that restart at 0 for each example, and each
example's first token, its [CLS] (`cls_positions`). The model keeps attention within each
example (`segment_ids`), so a packed row computes what its examples would compute alone.

Two users: pretraining (`pack`: masked-LM positions move by their example's offset, one
sentence-order label per example; see `pretraining.example_shapes`) and fine-tuning
(`pack_examples`: token fields and one value per example, e.g. its label).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grain
import numpy as np

from albert_jax.data.pretraining import BATCH_DTYPE, PretrainingDataConfig

Example = Mapping[str, np.ndarray]

# The features the packer concatenates; everything else in a packed row is derived from them.
_TOKEN_FIELDS = ("input_ids", "token_type_ids")
_PREDICTION_FIELDS = ("masked_lm_positions", "masked_lm_ids")


def first_fit(examples: grain.IterDataset, lengths: Mapping[str, int], padding: Mapping[str, int | float],
              *, max_examples: int, num_packing_bins: int) -> grain.IterDataset:
    """grain's first-fit packing of `examples` (dicts of 1-D fields) into rows `lengths` wide,
    at most `max_examples` per row, unused cells holding `padding`.

    More open rows (`num_packing_bins`) leave less padding; the rows of one round are emitted
    together, in order, once an example fits none of them. The packer's state is checkpointed
    with the iterator. A row holds each field, `<field>_segment_ids` and `<field>_positions`.
    """
    return grain.experimental.FirstFitPackIterDataset(
        examples, length_struct=dict(lengths), num_packing_bins=num_packing_bins,
        shuffle_bins=False, padding_struct=dict(padding), max_sequences_per_bin=max_examples)


def _segments(packed: dict[str, np.ndarray], max_examples: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The fields every packed row has (attention_mask, segment_ids, position_ids), from its
    input_ids, and where each of its `max_examples` example slots starts."""
    segment_ids = packed["input_ids_segment_ids"]
    # Examples sit in segment order from the row's start, so example s begins at the first
    # token of segment s (an absent segment's start is never read: its weights are 0).
    starts = np.searchsorted(segment_ids[segment_ids > 0], np.arange(1, max_examples + 1))
    row = {"attention_mask": segment_ids > 0, "segment_ids": segment_ids,
           "position_ids": packed["input_ids_positions"]}
    return row, starts


# -- pretraining -------------------------------------------------------------------------------


def unpadded(example: Example) -> dict[str, np.ndarray]:
    """One padded example (`pretraining.make_example`) cut to its tokens and predictions."""
    length = int(np.count_nonzero(example["attention_mask"]))
    predictions = int(np.count_nonzero(example["masked_lm_weights"]))
    fields = {name: example[name][:length] for name in _TOKEN_FIELDS}
    fields.update({name: example[name][:predictions] for name in _PREDICTION_FIELDS})
    fields["sentence_order_label"] = np.reshape(example["sentence_order_label"], (1,))
    return fields


class _PackedRow(grain.transforms.Map):
    """grain's packed features -> the packed batch fields (`pretraining.example_shapes`)."""

    def __init__(self, config: PretrainingDataConfig):
        self._max_examples = config.max_examples_per_row

    def map(self, packed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        row, starts = _segments(packed, self._max_examples)
        prediction_segments = packed["masked_lm_positions_segment_ids"]
        example_segments = packed["sentence_order_label_segment_ids"]
        predicted, used = prediction_segments > 0, example_segments > 0
        row.update({
            "input_ids": packed["input_ids"],
            "token_type_ids": packed["token_type_ids"],
            "masked_lm_positions": np.where(
                predicted, packed["masked_lm_positions"] + starts[prediction_segments - 1], 0),
            "masked_lm_ids": packed["masked_lm_ids"],
            "masked_lm_weights": predicted,
            "sentence_order_label": packed["sentence_order_label"],
            "sentence_order_weights": used,
            "cls_positions": np.where(used, starts[example_segments - 1], 0),
        })
        return {name: value.astype(BATCH_DTYPE) for name, value in row.items()}


def pack(examples: grain.IterDataset, config: PretrainingDataConfig, pad_id: int,
         num_packing_bins: int) -> grain.IterDataset:
    """Packed rows of the padded pretraining `examples` (see `first_fit`)."""
    length, slots = config.max_seq_length, config.packed_prediction_slots
    lengths = {"input_ids": length, "token_type_ids": length, "masked_lm_positions": slots,
               "masked_lm_ids": slots, "sentence_order_label": config.max_examples_per_row}
    padding = dict.fromkeys(lengths, 0) | {"input_ids": pad_id}
    packed = first_fit(examples.map(unpadded), lengths, padding,
                       max_examples=config.max_examples_per_row, num_packing_bins=num_packing_bins)
    return packed.map(_PackedRow(config))


# -- fine-tuning -------------------------------------------------------------------------------


class _PackedExamples(grain.transforms.Map):
    """grain's packed features -> rows of token fields and per-example fields."""

    def __init__(self, token_fields: Sequence[str], example_fields: Sequence[str], max_examples: int):
        self._token_fields, self._example_fields = tuple(token_fields), tuple(example_fields)
        self._max_examples = max_examples

    def map(self, packed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        row, starts = _segments(packed, self._max_examples)
        row = {name: value.astype(np.int32) for name, value in row.items()}
        row.update({name: packed[name] for name in self._token_fields + self._example_fields})
        used = packed[f"{self._example_fields[0]}_segment_ids"] > 0
        row["cls_positions"] = np.where(used, starts, 0).astype(np.int32)
        return row


def pack_examples(examples: grain.IterDataset, *, length: int, max_examples: int,
                  token_padding: Mapping[str, int], example_padding: Mapping[str, int | float],
                  num_packing_bins: int) -> grain.IterDataset:
    """Packed rows of unpadded examples (see `first_fit`): each example a dict of token fields
    (1-D, at most `length` long, `input_ids` among them, starting with its [CLS]) and of fields
    with one value per example (shape (1,), e.g. its label).

    A row holds the token fields [length] one example after another, then `token_padding`;
    each per-example field [max_examples], example k's value in slot k and `example_padding`
    in the unused slots; `attention_mask`, `segment_ids` and `position_ids` [length]; and
    `cls_positions` [max_examples], where example k starts (0 for an unused slot).
    """
    if "input_ids" not in token_padding or not example_padding:
        raise ValueError("pack_examples needs input_ids among the token fields and a per-example field")
    lengths = dict.fromkeys(token_padding, length) | dict.fromkeys(example_padding, max_examples)
    packed = first_fit(examples, lengths, {**token_padding, **example_padding},
                       max_examples=max_examples, num_packing_bins=num_packing_bins)
    return packed.map(_PackedExamples(list(token_padding), list(example_padding), max_examples))
