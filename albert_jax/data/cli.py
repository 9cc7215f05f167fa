"""`albert-jax tokenizer ...` and `albert-jax data ...`: from raw text to prepared documents."""

from __future__ import annotations

import argparse
from typing import Any

from albert_jax.errors import InputError


def register(subparsers: Any) -> None:
    """Adds the `tokenizer` and `data` commands to the `albert-jax` parser."""
    _register_tokenizer(subparsers)
    _register_data(subparsers)


def _register_tokenizer(subparsers: Any) -> None:
    tokenizer = subparsers.add_parser(
        "tokenizer",
        help="train a SentencePiece tokenizer",
        description="Train a SentencePiece tokenizer with ALBERT's recipe.",
    )
    commands = tokenizer.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
    train = commands.add_parser(
        "train",
        help="train PREFIX.model and PREFIX.vocab",
        description=(
            "Train a unigram SentencePiece model as ALBERT's was (ids <pad>=0, <unk>=1, "
            "[CLS]=2, [SEP]=3, [MASK]=4; text lowercased, accents removed) and write "
            "PREFIX.model and PREFIX.vocab. Existing files are never overwritten."
        ),
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        nargs="+",
        metavar="FILE_OR_GLOB",
        help="text files, one sentence per line (.gz accepted; quote globs to expand them here)",
    )
    source.add_argument(
        "--builtin", action="store_true", help="the built-in corpus (Python's documentation)"
    )
    train.add_argument(
        "--vocab-size", type=_positive_int, default=30000, metavar="N", help="default: 30000"
    )
    train.add_argument("--output", required=True, metavar="PREFIX", help="output path prefix")
    train.add_argument(
        "--input-sentence-size",
        type=_positive_int,
        default=10_000_000,
        metavar="N",
        help="train on at most N sentences sampled from the input (default: 10000000)",
    )
    train.set_defaults(run=_train_tokenizer)


def _register_data(subparsers: Any) -> None:
    data = subparsers.add_parser(
        "data",
        help="prepare and inspect pretraining data",
        description="Tokenize a corpus once, and look at the examples made from it.",
    )
    commands = data.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")

    prepare = commands.add_parser(
        "prepare",
        help="tokenize a corpus into a tfds dataset of documents",
        description=(
            "Tokenize a corpus into a tensorflow-datasets dataset (ArrayRecord) of documents, "
            "with a small held-out split 'validation'. Runs on every core with bounded memory; "
            "an interrupted run resumes when rerun with the same arguments."
        ),
    )
    source = prepare.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input",
        nargs="+",
        metavar="FILE_OR_GLOB",
        help="text files, one sentence per line, a blank line between documents (.gz accepted)",
    )
    source.add_argument(
        "--tfds", metavar="NAME", help="a prepared tfds dataset, e.g. wikipedia/20230601.en"
    )
    source.add_argument(
        "--builtin", action="store_true", help="the built-in corpus (Python's documentation)"
    )
    prepare.add_argument("--tfds-data-dir", metavar="DIR", help="tfds data directory of --tfds")
    prepare.add_argument(
        "--tfds-split", default="train", metavar="SPLIT", help="split of --tfds (default: train)"
    )
    prepare.add_argument(
        "--tfds-feature",
        metavar="NAME",
        help="text feature of --tfds (default: 'text' or the only one)",
    )
    prepare.add_argument("--tokenizer", required=True, metavar="PREFIX.model")
    prepare.add_argument("--output", required=True, metavar="DIR", help="must not exist yet")
    prepare.add_argument(
        "--eval-fraction",
        type=float,
        default=0.01,
        metavar="F",
        help="share of documents held out for evaluation (default: 0.01)",
    )
    prepare.add_argument(
        "--num-workers", type=int, metavar="N", help="tokenizer processes (default: one per core)"
    )
    prepare.set_defaults(
        run=_prepare, on_interrupt="interrupted; rerun the same command to resume"
    )

    inspect = commands.add_parser(
        "inspect",
        help="print pretraining examples made from a prepared dataset",
        description=(
            "Print pretraining examples (SOP pairs with n-gram masks) decoded, masked tokens "
            "marked; with --json, one JSON object per example with the batch fields as lists."
        ),
    )
    inspect.add_argument("dir", metavar="DIR", help="a directory written by `data prepare`")
    inspect.add_argument("--tokenizer", required=True, metavar="PREFIX.model")
    inspect.add_argument("--num-examples", type=_positive_int, default=4, metavar="N")
    inspect.add_argument("--max-seq-length", type=_positive_int, default=512, metavar="S")
    inspect.add_argument("--seed", type=int, default=0, metavar="K")
    inspect.add_argument("--json", action="store_true", help="one JSON object per line")
    inspect.add_argument(
        "--padding",
        action="store_true",
        help="report the share of padding over --num-examples examples, one per row and packed",
    )
    inspect.set_defaults(run=_inspect)


def _train_tokenizer(args: argparse.Namespace, overrides: list[str]) -> int:
    from albert_jax.data.corpus import BuiltinCorpus, TextFiles, sentences
    from albert_jax.data.tokenizer import Tokenizer

    # Files go in as paths, so that a message can name the one at fault.
    inputs = sentences(BuiltinCorpus()) if args.builtin else TextFiles(args.input).files
    tokenizer = Tokenizer.train(
        inputs,
        args.vocab_size,
        output_prefix=args.output,
        input_sentence_size=args.input_sentence_size,
    )
    print(f"wrote {tokenizer.path} and {args.output}.vocab (vocabulary {tokenizer.vocab_size})")
    return 0


def _prepare(args: argparse.Namespace, overrides: list[str]) -> int:
    from albert_jax.data.corpus import BuiltinCorpus, Corpus, TextFiles, TfdsText
    from albert_jax.data.prepare import prepare
    from albert_jax.data.tokenizer import Tokenizer

    if args.tfds is None and (args.tfds_data_dir or args.tfds_feature):
        raise InputError("--tfds-data-dir and --tfds-feature go with --tfds")
    tokenizer = Tokenizer.load(args.tokenizer)
    source: Corpus
    if args.builtin:
        source = BuiltinCorpus()
    elif args.tfds:
        source = TfdsText(
            args.tfds, data_dir=args.tfds_data_dir, split=args.tfds_split, feature=args.tfds_feature
        )
    else:
        source = TextFiles(args.input)
    summary = prepare(
        source,
        tokenizer,
        args.output,
        eval_fraction=args.eval_fraction,
        num_workers=args.num_workers,
    )
    counts = ", ".join(
        f"{split}: {summary.documents[split]} documents, {summary.tokens[split]} tokens"
        for split in summary.documents
    )
    print(f"{summary.output_dir}: {counts}; {summary.dropped_documents} empty documents dropped")
    return 0


def _inspect(args: argparse.Namespace, overrides: list[str]) -> int:
    from albert_jax.data import inspect

    return int(inspect.run(args) or 0)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value
