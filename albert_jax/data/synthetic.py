"""Synthetic pretraining batches: random tokens laid out like real MLM+SOP examples.

Batch contents depend only on the seed, the stream, the step and the row of the global batch,
never on how many processes read it: the multi-device tests compare different meshes and
process counts on identical batches, and benchmarks need no corpus.
"""

from __future__ import annotations

import grain
import numpy as np

from albert_jax.data.pretraining import BATCH_DTYPE, PretrainingDataConfig, example_shapes

# Ids the synthetic source shares with ALBERT tokenizers: <pad> 0, [CLS] 2, [SEP] 3, [MASK] 4.
_PAD, _CLS, _SEP, _MASK, _FIRST_WORD = 0, 2, 3, 4, 5


class SyntheticBatch:
    """Step -> rows [start, stop) of that step's global batch of random MLM+SOP examples."""

    def __init__(self, config: PretrainingDataConfig, vocab_size: int, stream: int,
                 global_batch: int, rows: tuple[int, int]):
        self.config, self.vocab_size, self.stream = config, vocab_size, stream
        self.global_batch, self.rows = global_batch, rows

    def __call__(self, step: int) -> dict[str, np.ndarray]:
        examples = [self._example(step * self.global_batch + row) for row in range(*self.rows)]
        return {name: np.stack([e[name] for e in examples]) for name in examples[0]}

    def _example(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, self.stream, index])
        S, P = self.config.max_seq_length, self.config.num_prediction_slots
        example = {name: np.zeros(shape, BATCH_DTYPE) for name, shape in example_shapes(self.config).items()}
        length = int(rng.integers(max(S // 2, 4), S + 1))  # the rest is padding
        split = int(rng.integers(2, length - 1))  # [CLS] A [SEP] B [SEP]
        tokens = rng.integers(_FIRST_WORD, self.vocab_size, S, dtype=BATCH_DTYPE)
        tokens[[0, split, length - 1]] = (_CLS, _SEP, _SEP)
        tokens[length:] = _PAD
        candidates = np.setdiff1d(np.arange(1, length - 1), [split])
        count = int(rng.integers(1, min(P, len(candidates)) + 1))  # slots past it: weight 0
        positions = np.sort(rng.choice(candidates, count, replace=False))
        example["input_ids"][:] = tokens
        example["input_ids"][positions] = _MASK
        example["attention_mask"][:length] = 1
        example["token_type_ids"][split + 1:length] = 1
        example["masked_lm_positions"][:count] = positions
        example["masked_lm_ids"][:count] = tokens[positions]
        example["masked_lm_weights"][:count] = 1
        example["sentence_order_label"][...] = rng.integers(2)
        return example


def synthetic_iterator(config: PretrainingDataConfig, vocab_size: int, stream: int,
                       global_batch: int, rows: tuple[int, int]) -> grain.DatasetIterator:
    """An endless, checkpointable iterator of this process's rows of synthetic batches."""
    make = SyntheticBatch(config, vocab_size, stream, global_batch, rows)
    return iter(grain.MapDataset.range(2**62).map(make).to_iter_dataset())
