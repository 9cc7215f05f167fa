"""Benchmark: pretraining examples per second per core (SOP pairs + n-gram masks, seq 512).

    python scripts/bench_data.py [--prepared DIR --tokenizer PREFIX.model] [--original DIR]

Without --prepared, it trains a tokenizer on the built-in corpus and prepares that corpus in
a temporary directory first (about a minute). It then times, in this one process:

- creation+masking: `pretraining.document_examples` over the documents (numpy only), after
  joining every --merge consecutive documents into one, so that most examples fill the
  sequence as with Wikipedia's long documents;
- pipeline: examples through `make_pretraining_iterator` (grain: shuffle, read, examples,
  window shuffle, batches of 32) over the prepared documents as they are, no workers;
- with --original DIR (a checkout of google-research/ALBERT named `albert` inside DIR, and
  TensorFlow installed), the original `create_instances_from_document` on the same
  documents as pieces, with the same options. Its code is run from there, not copied.

The target is 2,000 examples/s per core for creation+masking.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from albert_jax.data.corpus import BuiltinCorpus, sentences
from albert_jax.data.documents import load_documents
from albert_jax.data.pipeline import make_pretraining_iterator
from albert_jax.data.prepare import prepare
from albert_jax.data.pretraining import PretrainingDataConfig, Vocab, document_examples
from albert_jax.data.tokenizer import Tokenizer


def build_builtin(workdir: Path, vocab_size: int) -> tuple[Tokenizer, Path]:
    documents = list(BuiltinCorpus())
    tokenizer = Tokenizer.train(sentences(documents), vocab_size, output_prefix=workdir / "spm")
    prepare(BuiltinCorpus(), tokenizer, workdir / "prepared", progress=False)
    return tokenizer, workdir / "prepared"


def merge_documents(documents: list, group: int) -> list:
    """Joins each run of `group` documents into one, for documents as long as Wikipedia's."""
    merged = []
    for start in range(0, len(documents), group):
        run = documents[start : start + group]
        merged.append({key: np.concatenate([d[key] for d in run]) for key in ("token_ids", "sentence_lengths")})
    return merged


def time_creation(documents: list, config: PretrainingDataConfig, vocab: Vocab) -> tuple[float, int, float]:
    """Examples/s, example count and mean tokens per example over all `documents` once."""
    start = time.perf_counter()
    examples = [
        example
        for index, document in enumerate(documents)
        for example in document_examples(document, documents, index, 0, config, vocab)
    ]
    elapsed = time.perf_counter() - start
    tokens = np.mean([e["attention_mask"].sum() for e in examples])
    return len(examples) / elapsed, len(examples), float(tokens)


def time_pipeline(source, config: PretrainingDataConfig, vocab: Vocab, num_examples: int) -> float:
    batch_size = 32
    it = make_pretraining_iterator(
        source, config, vocab, batch_size=batch_size, shard_index=0, shard_count=1, prefetch=0
    )
    next(it)  # the first batch pays for filling the shuffle window
    steps = max(1, num_examples // batch_size)
    start = time.perf_counter()
    for _ in range(steps):
        next(it)
    return steps * batch_size / (time.perf_counter() - start)


def time_original(
    checkout: Path, documents: list, tokenizer: Tokenizer, config: PretrainingDataConfig
) -> tuple[float, int]:
    """Examples/s of the original script's per-document function, on the same documents."""
    sys.path.insert(0, str(checkout))
    # Its tokenization module imports tensorflow_hub, which nothing timed here uses.
    sys.modules.setdefault("tensorflow_hub", types.ModuleType("tensorflow_hub"))
    original = importlib.import_module("albert.create_pretraining_data")
    original.FLAGS(
        [
            "create_pretraining_data",
            "--spm_model_file=unused",  # selects the SentencePiece word-start rule
            f"--ngram={config.ngram}",
            f"--do_whole_word_mask={config.do_whole_word_mask}",
            f"--favor_shorter_ngram={config.favor_shorter_ngram}",
            f"--do_permutation={config.do_permutation}",
            f"--random_next_sentence={config.random_next_sentence}",
        ]
    )
    pieces = [tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)]
    as_pieces = []
    for document in documents:
        ends = np.cumsum(document["sentence_lengths"])
        as_pieces.append([[pieces[i] for i in sentence] for sentence in np.split(document["token_ids"], ends[:-1])])
    rng = random.Random(config.seed)
    start = time.perf_counter()
    count = 0
    for index in range(len(as_pieces)):
        count += len(
            original.create_instances_from_document(
                as_pieces,
                index,
                config.max_seq_length,
                config.short_seq_prob,
                config.masked_lm_prob,
                config.max_predictions_per_seq,
                pieces,
                rng,
            )
        )
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prepared", type=Path, help="a `data prepare` directory")
    parser.add_argument("--tokenizer", type=Path, help="its PREFIX.model")
    parser.add_argument("--vocab-size", type=int, default=5000, help="without --prepared")
    parser.add_argument("--documents", type=int, default=500, help="documents to time over")
    parser.add_argument(
        "--merge",
        type=int,
        default=4,
        help="join this many prepared documents into one (the built-in corpus's are short)",
    )
    parser.add_argument("--max-seq-length", type=int, default=512)
    parser.add_argument("--original", type=Path, help="directory holding an `albert` checkout")
    args = parser.parse_args()
    if (args.prepared is None) != (args.tokenizer is None):
        parser.error("--prepared and --tokenizer go together")

    with tempfile.TemporaryDirectory() as workdir:
        if args.prepared is None:
            print("building the built-in corpus with a fresh tokenizer ...", flush=True)
            tokenizer, prepared = build_builtin(Path(workdir), args.vocab_size)
        else:
            tokenizer, prepared = Tokenizer.load(args.tokenizer), args.prepared
        source = load_documents(prepared, "train", tokenizer)
        documents = merge_documents(
            [source[i] for i in range(min(args.documents * args.merge, len(source)))], args.merge
        )
        config = PretrainingDataConfig(max_seq_length=args.max_seq_length)
        vocab = Vocab.from_tokenizer(tokenizer)

        rate, count, tokens = time_creation(documents, config, vocab)
        print(
            f"creation+masking, numpy, 1 core: {rate:,.0f} examples/s "
            f"({count} examples of seq {config.max_seq_length}, {tokens:.0f} tokens on average, "
            f"from {len(documents)} documents)"
        )
        rate = time_pipeline(source, config, vocab, count)
        print(f"grain pipeline, no workers, 1 core: {rate:,.0f} examples/s")
        if args.original is not None:
            rate, count = time_original(args.original, documents, tokenizer, config)
            print(f"original create_instances_from_document, 1 core: {rate:,.0f} examples/s ({count} examples)")


if __name__ == "__main__":
    main()
