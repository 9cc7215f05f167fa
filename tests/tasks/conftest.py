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
    tokenizer = Tokenizer.train([root / "corpus.txt"], 60, output_prefix=root / "sp")
    config = AlbertConfig.preset("tiny", vocab_size=tokenizer.vocab_size, max_position_embeddings=128,
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


@pytest.fixture(scope="session")
def scores_files(tmp_path_factory) -> tuple[Path, Path]:
    """train.jsonl and dev.jsonl for regression: `text`, `score` = number of positive cue words
    minus negative ones."""
    import json

    root = tmp_path_factory.mktemp("scores")
    rng = random.Random(2)
    for name, count in (("train", 300), ("dev", 60)):
        with open(root / f"{name}.jsonl", "w") as f:
            for _ in range(count):
                cues = [rng.choice(POSITIVE + NEGATIVE) for _ in range(rng.randint(1, 3))]
                score = sum(cue in POSITIVE for cue in cues) - sum(cue in NEGATIVE for cue in cues)
                words = sentence(rng, cues[0]).split() + cues[1:]
                rng.shuffle(words)
                f.write(json.dumps({"text": " ".join(words), "score": score}) + "\n")
    return root / "train.jsonl", root / "dev.jsonl"


@pytest.fixture(scope="session")
def race_dir(tmp_path_factory) -> Path:
    """A RACE download in miniature (RACE/{train,dev}/{high,middle}/*.txt): the right option is
    the one that says something positive."""
    import json

    root = tmp_path_factory.mktemp("race") / "RACE"
    rng = random.Random(3)
    for split, articles in (("train", 60), ("dev", 12)):
        for level in ("high", "middle"):
            folder = root / split / level
            folder.mkdir(parents=True)
            for n in range(articles // 2):
                questions, options, answers = [], [], []
                for _ in range(3):
                    right = rng.randrange(4)
                    choices = [sentence(rng, rng.choice(POSITIVE if i == right else NEGATIVE))
                               for i in range(4)]
                    blank = rng.random() < 0.5
                    questions.append("the _ one" if blank else "which is it ?")
                    options.append(choices)
                    answers.append("ABCD"[right])
                article = " . ".join(sentence(rng, rng.choice(FILLER)) for _ in range(4))
                (folder / f"{n}.txt").write_text(json.dumps({
                    "id": f"{level}{n}.txt", "article": article, "questions": questions,
                    "options": options, "answers": answers}))
    return root


@pytest.fixture(scope="session")
def conll_files(tmp_path_factory) -> tuple[Path, Path]:
    """train.txt and dev.txt in CoNLL form (word, POS, tag): cue words are B-POS / B-NEG."""
    root = tmp_path_factory.mktemp("conll")
    rng = random.Random(4)
    for name, count in (("train", 300), ("dev", 60)):
        lines = ["-DOCSTART- -X- O", ""]
        for _ in range(count):
            for word in sentence(rng, rng.choice(POSITIVE + NEGATIVE)).split():
                tag = "B-POS" if word in POSITIVE else "B-NEG" if word in NEGATIVE else "O"
                lines.append(f"{word} NN {tag}")
            lines.append("")
        (root / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return root / "train.txt", root / "dev.txt"
