"""Sequence packing of pretraining examples: several examples per row instead of padding.

Real examples are mostly shorter than the row (the original makes 10% of them short on purpose,
and a document's last example is often short), so padded rows spend much of their compute on
padding. Packing places whole examples one after another in a row with grain's first-fit packer
(`grain.experimental.FirstFitPackIterDataset`), then rewrites the fields that point into the
row: masked-LM positions move by their example's offset, and each example's [CLS] position is
recorded for its sentence-order prediction. The model keeps attention within each example
(`segment_ids`) and restarts positions per example, so a packed row computes what its examples
would compute alone (see `pretraining.example_shapes` for the packed batch contract).
"""

from __future__ import annotations

from collections.abc import Mapping

import grain
import numpy as np

from albert_jax.data.pretraining import BATCH_DTYPE, PretrainingDataConfig

Example = Mapping[str, np.ndarray]

# The features the packer concatenates; everything else in a packed row is derived from them.
_TOKEN_FIELDS = ("input_ids", "token_type_ids")
_PREDICTION_FIELDS = ("masked_lm_positions", "masked_lm_ids")


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
        segment_ids = packed["input_ids_segment_ids"]
        # Examples sit in segment order from the row's start, so example s begins at the first
        # token of segment s (an absent segment's start is never read: its weights are 0).
        starts = np.searchsorted(segment_ids[segment_ids > 0], np.arange(1, self._max_examples + 1))
        prediction_segments = packed["masked_lm_positions_segment_ids"]
        example_segments = packed["sentence_order_label_segment_ids"]
        predicted, used = prediction_segments > 0, example_segments > 0
        row = {
            "input_ids": packed["input_ids"],
            "attention_mask": segment_ids > 0,
            "segment_ids": segment_ids,
            "token_type_ids": packed["token_type_ids"],
            "position_ids": packed["input_ids_positions"],
            "masked_lm_positions": np.where(
                predicted, packed["masked_lm_positions"] + starts[prediction_segments - 1], 0),
            "masked_lm_ids": packed["masked_lm_ids"],
            "masked_lm_weights": predicted,
            "sentence_order_label": packed["sentence_order_label"],
            "sentence_order_weights": used,
            "cls_positions": np.where(used, starts[example_segments - 1], 0),
        }
        return {name: value.astype(BATCH_DTYPE) for name, value in row.items()}


def pack(examples: grain.IterDataset, config: PretrainingDataConfig, pad_id: int,
         num_packing_bins: int) -> grain.IterDataset:
    """Packed rows of the padded `examples` (first fit into `num_packing_bins` open rows).

    More open rows leave less padding; the rows of one round are emitted together once an
    example fits none of them. The packer's state is checkpointed with the iterator.
    """
    length, slots = config.max_seq_length, config.packed_prediction_slots
    lengths = {"input_ids": length, "token_type_ids": length, "masked_lm_positions": slots,
               "masked_lm_ids": slots, "sentence_order_label": config.max_examples_per_row}
    padding = dict.fromkeys(lengths, 0) | {"input_ids": pad_id}
    packed = grain.experimental.FirstFitPackIterDataset(
        examples.map(unpadded), length_struct=lengths, num_packing_bins=num_packing_bins,
        shuffle_bins=False, padding_struct=padding,
        max_sequences_per_bin=config.max_examples_per_row)
    return packed.map(_PackedRow(config))
