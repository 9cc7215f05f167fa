"""How much sentence-order signal the built-in corpus's SOP pairs hold for learners that see
every pair at once: the ceiling the embedded default's SOP accuracy is measured against.

The pairs are made exactly as the trainer makes them (`create_sentence_pairs`, several passes),
from the training documents of the built-in corpus with the embedded default's 256-piece
tokenizer. They are split by document (every fifth held out), so that no held-out pair shares a
document with a training one, as in the trainer's own held-out split. Two learners, fitted on
the training pairs and scored on the held-out ones, beside the majority label's share there:

- logistic regression on the pieces of A and of B (bags of pieces, each normalised by its
  segment's length), the first and last piece of each segment, and the segments' lengths;
- gradient-boosted trees (scikit-learn's HistGradientBoostingClassifier) on the same features.

    python scripts/sop_signal.py                 # sequence lengths 64 (the default's) and 128
    python scripts/sop_signal.py --seq 64 --passes 5
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from albert_jax.data.builtin_dataset import builtin_dataset
from albert_jax.data.documents import TRAIN_SPLIT, load_documents
from albert_jax.data.pretraining import PretrainingDataConfig, create_sentence_pairs, document_rng
from albert_jax.data.tokenizer import Tokenizer

VOCAB = 256  # the embedded default's


def features(tokens_a: np.ndarray, tokens_b: np.ndarray, seq: int) -> np.ndarray:
    row = np.zeros(6 * VOCAB + 3, np.float32)
    for offset, tokens in ((0, tokens_a), (VOCAB, tokens_b)):
        np.add.at(row, offset + tokens, 1.0 / max(len(tokens), 1))
    for offset, tokens in ((2 * VOCAB, tokens_a), (4 * VOCAB, tokens_b)):
        if len(tokens):
            row[offset + tokens[0]] = row[offset + VOCAB + tokens[-1]] = 1.0
    row[-3:] = len(tokens_a) / seq, len(tokens_b) / seq, (len(tokens_a) + len(tokens_b)) / seq
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--passes", type=int, default=3, help="passes over the documents (fresh pairs each)")
    args = parser.parse_args()
    tokenizer_path, dataset_dir = builtin_dataset(VOCAB)
    source = load_documents(dataset_dir, TRAIN_SPLIT, Tokenizer.load(tokenizer_path))
    documents = [source[i] for i in range(len(source))]
    for seq in args.seq:
        config = PretrainingDataConfig(max_seq_length=seq)
        rows, labels, groups = [], [], []
        for epoch in range(args.passes):
            for index, document in enumerate(documents):
                for pair in create_sentence_pairs(document, documents, index, config,
                                                  document_rng(config.seed, epoch, index)):
                    rows.append(features(pair.tokens_a, pair.tokens_b, seq))
                    labels.append(pair.label)
                    groups.append(index)
        x, y = np.stack(rows), np.asarray(labels)
        held_out = np.asarray(groups) % 5 == 0
        majority = max(y[held_out].mean(), 1 - y[held_out].mean())
        print(f"seq {seq}: {len(y)} pairs from {len(documents)} documents ({args.passes} passes); held out "
              f"{held_out.sum()} pairs of {len(set(np.asarray(groups)[held_out]))} documents; "
              f"majority label {majority:.3f}")
        learners = {"logistic regression": LogisticRegression(C=1.0, max_iter=3000),
                    "gradient-boosted trees": HistGradientBoostingClassifier(max_iter=300, random_state=0)}
        for name, learner in learners.items():
            accuracy = learner.fit(x[~held_out], y[~held_out]).score(x[held_out], y[held_out])
            print(f"  {name:<24} held-out accuracy {accuracy:.3f} ({accuracy - majority:+.3f})", flush=True)


if __name__ == "__main__":
    main()
