"""Fixtures of the fine-tuning tests: a tiny "pretrained" ALBERT with its tokenizer, and small
tasks the tests write themselves, learnable by that model in a few hundred steps."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

# Words of the toy tasks: a sentence's class is decided by which cue word it holds.
POSITIVE = ("good", "great", "fine")
NEGATIVE = ("bad", "awful", "poor")
FILLER = ("the", "cat", "dog", "sat", "on", "mat", "a", "big", "red", "house", "tree", "ran",
          "blue", "sky", "car", "road", "old", "man", "saw", "it")


def sentence(rng: random.Random, cue: str) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
    words.insert(rng.randint(0, len(words)), cue)
    return " ".join(words)


@pytest.fixture(scope="session")
def pretrained_dir(tmp_path_factory) -> Path:
    """A tiny ALBERT (random weights, 128 positions) saved as a Hugging Face directory, with the
    SentencePiece model it "was pretrained with" beside it as spiece.model."""
    from flax import nnx

    from albert_jax import AlbertConfig, AlbertForPreTraining, AlbertTokenizer
    from albert_jax.data.tokenizer import Tokenizer

    root = tmp_path_factory.mktemp("pretrained")
    rng = random.Random(0)
    lines = [sentence(rng, rng.choice(POSITIVE + NEGATIVE)) for _ in range(3000)]
    (root / "corpus.txt").write_text("\n".join(lines) + "\n")
    Tokenizer.train([root / "corpus.txt"], 128, output_prefix=root / "sp")
    config = AlbertConfig.preset("tiny", vocab_size=128, max_position_embeddings=128,
                                 hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model_dir = root / "model"
    AlbertForPreTraining(config, rngs=nnx.Rngs(0)).save_pretrained(model_dir)
    AlbertTokenizer.from_pretrained(root / "sp.model").save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def sentiment_files(tmp_path_factory) -> tuple[Path, Path]:
    """train.tsv (300 rows) and dev.tsv (60 rows): `sentence`, `label` (pos/neg by cue word)."""
    root = tmp_path_factory.mktemp("sentiment")
    rng = random.Random(1)
    for name, count in (("train", 300), ("dev", 60)):
        rows = ["sentence\tlabel"]
        for _ in range(count):
            positive = rng.random() < 0.5
            cue = rng.choice(POSITIVE if positive else NEGATIVE)
            rows.append(f"{sentence(rng, cue)}\t{'pos' if positive else 'neg'}")
        (root / f"{name}.tsv").write_text("\n".join(rows) + "\n")
    return root / "train.tsv", root / "dev.tsv"
