"""`albert-jax tokenizer ...` and `albert-jax data ...` on the command line."""

from __future__ import annotations

import sys
import types

import pytest

import albert_jax.cli
from albert_jax.data.documents import EVAL_SPLIT, TRAIN_SPLIT, load_documents


@pytest.fixture(autouse=True)
def data_commands_only(monkeypatch):
    """The parser with this package's commands alone, whatever other packages register."""
    monkeypatch.setattr(albert_jax.cli, "_COMMAND_MODULES", ("albert_jax.data.cli",))


def _main(*argv: object) -> int:
    return albert_jax.cli.main([str(arg) for arg in argv])


@pytest.mark.parametrize(
    "command",
    [
        ["tokenizer"],
        ["tokenizer", "train"],
        ["data"],
        ["data", "prepare"],
        ["data", "inspect"],
    ],
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        _main(*command, "--help")
    assert exit_.value.code == 0
    assert f"usage: albert-jax {' '.join(command)}" in capsys.readouterr().out


@pytest.fixture
def corpus_file(tmp_path, builtin_documents):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join("\n".join(document) for document in builtin_documents[:300]))
    return path


def test_train_then_prepare(tmp_path, corpus_file, capsys):
    prefix = tmp_path / "tok" / "small"
    train = ["tokenizer", "train", "--input", corpus_file, "--vocab-size", 300]
    assert _main(*train, "--output", prefix) == 0
    assert "vocabulary 300" in capsys.readouterr().out
    model = f"{prefix}.model"
    output = tmp_path / "prepared"
    assert (
        _main("data", "prepare", "--input", corpus_file, "--tokenizer", model, "--output", output,
              "--num-workers", 0, "--eval-fraction", 0.1)
        == 0
    )  # fmt: skip
    out = capsys.readouterr().out
    train = len(load_documents(output, TRAIN_SPLIT))
    held_out = len(load_documents(output, EVAL_SPLIT))
    assert train + held_out == 300 and held_out > 0
    assert f"train: {train} documents" in out and f"validation: {held_out} documents" in out


def _assert_one_line_error(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1
    assert err[-1].startswith("albert-jax ") and ": error: " in err[-1]
    for fragment in fragments:
        assert fragment in err[-1]


def test_bad_input_is_one_line_and_exit_code_2(tmp_path, corpus_file, tiny_tokenizer, capsys):
    prefix = tmp_path / "tok"
    train = ["tokenizer", "train", "--input", corpus_file, "--vocab-size", 300]
    assert _main(*train, "--output", prefix) == 0
    model = (tmp_path / "tok.model").read_bytes()
    capsys.readouterr()
    # Nothing already written is touched.
    assert _main("tokenizer", "train", "--builtin", "--vocab-size", 300, "--output", prefix) == 2
    _assert_one_line_error(capsys, "tok.model' exists")
    assert (tmp_path / "tok.model").read_bytes() == model

    missing = tmp_path / "missing*.txt"
    assert _main("tokenizer", "train", "--input", missing, "--output", tmp_path / "x") == 2
    _assert_one_line_error(capsys, "no file matches", "missing*.txt")

    prepare = ["data", "prepare", "--input", corpus_file, "--output", tmp_path / "out"]
    assert _main(*prepare, "--tokenizer", tmp_path / "missing.model") == 2
    _assert_one_line_error(capsys, "missing.model")
    assert _main(*prepare, "--tokenizer", corpus_file) == 2
    _assert_one_line_error(capsys, "is not a SentencePiece model")
    assert _main(*prepare, "--tokenizer", tiny_tokenizer.path, "--tfds-data-dir", tmp_path) == 2
    _assert_one_line_error(capsys, "--tfds-data-dir and --tfds-feature go with --tfds")
    assert _main("data", "prepare", "--tfds", "albert_no_such_dataset", "--tfds-data-dir", tmp_path,
                 "--tokenizer", tiny_tokenizer.path, "--output", tmp_path / "out") == 2  # fmt: skip
    _assert_one_line_error(capsys, "albert_no_such_dataset", "not found")
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        _main("tokenizer", "train", "--builtin", "--vocab-size", "many", "--output", "x")
    assert exit_.value.code == 2
    assert "--vocab-size: not an integer: 'many'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        _main("data", "prepare", "--builtin", "--input", "a", "--tokenizer", "t", "--output", "o")
    assert exit_.value.code == 2  # one source at a time


def test_inspect_hands_its_arguments_to_the_inspect_module(monkeypatch, tmp_path):
    seen = []
    fake = types.ModuleType("albert_jax.data.inspect")
    fake.run = lambda args: seen.append(args) or 0
    monkeypatch.setitem(sys.modules, "albert_jax.data.inspect", fake)
    import albert_jax.data

    monkeypatch.setattr(albert_jax.data, "inspect", fake, raising=False)
    argv = ["data", "inspect", tmp_path, "--tokenizer", "t.model", "--num-examples", 3,
            "--max-seq-length", 128, "--seed", 7, "--json"]  # fmt: skip
    assert _main(*argv) == 0
    (args,) = seen
    assert args.dir == str(tmp_path) and args.tokenizer == "t.model"
    assert (args.num_examples, args.max_seq_length, args.seed, args.json) == (3, 128, 7, True)
