"""Synthetic corpora for the pretraining-example and pipeline tests: made in milliseconds,
shaped like prose (documents of 1-60 sentences of 3-45 pieces, about 70% of pieces starting a
word). A module of its own so that grain's worker processes can unpickle these sources."""

from __future__ import annotations

import numpy as np

from albert_jax.data.pretraining import Vocab

VOCAB_SIZE = 8000
NUM_SPECIAL = 5  # <pad> <unk> [CLS] [SEP] [MASK], ids 0-4 as in ALBERT


def synthetic_vocab(seed: int = 0) -> Vocab:
    word_start = np.random.default_rng(seed).random(VOCAB_SIZE) < 0.7
    word_start[:NUM_SPECIAL] = True
    return Vocab(size=VOCAB_SIZE, pad_id=0, cls_id=2, sep_id=3, mask_id=4, word_start=word_start)


def synthetic_documents(num_documents: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    documents = []
    for _ in range(num_documents):
        lengths = rng.integers(3, 46, rng.integers(1, 61)).astype(np.int32)
        token_ids = rng.integers(NUM_SPECIAL, VOCAB_SIZE, lengths.sum()).astype(np.int32)
        documents.append({"token_ids": token_ids, "sentence_lengths": lengths})
    return documents


class TaggedDocuments:
    """Random-access documents whose every token is `NUM_SPECIAL + document index`, so any
    unmasked token of an example says which document it came from."""

    def __init__(self, num_documents: int, seed: int = 0):
        self._documents = synthetic_documents(num_documents, seed)
        for index, document in enumerate(self._documents):
            document["token_ids"][:] = NUM_SPECIAL + index

    def __len__(self) -> int:
        return len(self._documents)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self._documents[index]
