"""Hostile input to `tokenizer train`, `data prepare` and `data inspect`: each gets one line naming
the file or value at fault and exit status 2 (Ctrl-C: 130), and nothing already written is lost.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import albert_jax.cli
from albert_jax.data import prepare as prepare_module
from albert_jax.data.corpus import Corpus, Document, TextFiles
from albert_jax.data.documents import SPLITS, load_documents
from albert_jax.data.prepare import prepare
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.errors import InputError

REPOSITORY = Path(__file__).resolve().parents[2]
INTERRUPTED = "albert-jax data: interrupted; rerun the same command to resume"


@pytest.fixture(autouse=True)
def data_commands_only(monkeypatch):
    monkeypatch.setattr(albert_jax.cli, "_COMMAND_MODULES", ("albert_jax.data.cli",))


def _main(*argv: object) -> int:
    return albert_jax.cli.main([str(arg) for arg in argv])


def _one_line_error(capsys, *fragments: str) -> str:
    """The error line, checked to be the only thing on stderr besides progress bars."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("prepare ")]  # tqdm's bar
    assert len(errors) == 1, lines
    assert errors[0].startswith("albert-jax ") and ": error: " in errors[0], errors[0]
    for fragment in fragments:
        assert fragment in errors[0]
    return errors[0]


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.fixture
def corpus_file(tmp_path, builtin_documents) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join("\n".join(document) for document in builtin_documents[:40]))
    return path


def _prepare_cli(corpus: Path, tokenizer: Tokenizer, output: Path, *options: object) -> int:
    return _main("data", "prepare", "--input", corpus, "--tokenizer", tokenizer.path,
                 "--output", output, "--num-workers", 0, *options)  # fmt: skip


def _gzip_corrupt_after(text: bytes) -> bytes:
    """`text` gzipped, then a second gzip member whose deflate data is invalid (block type 3):
    reading fails with zlib.error once `text` has been read."""
    broken_member = bytes.fromhex("1f8b0800000000000003") + b"\x07" + bytes(16)
    return gzip.compress(text) + broken_member


# ---------------------------------------------------------------------------------------------
# 1. Only a `.partial` that prepare marked as its own is resumed or removed.


def test_prepare_refuses_a_partial_folder_it_did_not_write(tmp_path, corpus_file, tiny_tokenizer, capsys):
    partial = tmp_path / "out.partial"
    partial.mkdir()
    (partial / "notes.txt").write_text("keep me")
    (partial / "progress.json").write_text('{"settings": "someone else\'s"}')
    before = _tree(partial)
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "out") == 2
    _one_line_error(capsys, "out.partial' exists and was not left by")
    assert _tree(partial) == before and not (tmp_path / "out").exists()

    (tmp_path / "file.partial").write_text("a file")
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "file") == 2
    _one_line_error(capsys, "file.partial' exists")
    assert (tmp_path / "file.partial").read_text() == "a file"


def test_prepare_adopts_an_empty_partial_folder(tmp_path, corpus_file, tiny_tokenizer):
    # What a run killed between creating the folder and marking it leaves behind.
    (tmp_path / "out.partial").mkdir()
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "out") == 0
    assert len(load_documents(tmp_path / "out")) > 0 and not (tmp_path / "out.partial").exists()


def test_prepare_marks_its_partial_folder_before_writing_anything(tmp_path, tiny_tokenizer, monkeypatch):
    def interrupt(documents):
        progress = json.loads((tmp_path / "out.partial" / "progress.json").read_text())
        assert progress["written_by"] == "albert-jax data prepare"
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "_tokenize_chunk", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(_Corpus([["One."]]), tiny_tokenizer, tmp_path / "out", num_workers=0, progress=False)


# ---------------------------------------------------------------------------------------------
# 2. A corpus without documents is refused, and leaves nothing behind.


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no documents"),
        (b"\n\n   \n\t\n\n", "holds no documents"),
        (bytes(range(256)) * 4, "not UTF-8 text at {path}:1 (it holds NUL bytes)"),
        (b"Caf\xe9 cr\xe8me.\n\xc9t\xe9.\n", "not UTF-8 text at {path}:1"),  # Latin-1
        ("\u0301\n\u0308\u0301\n\n\u0302\n".encode(), "its 2 document(s) all tokenize to nothing"),
    ],
    ids=["empty", "blank-lines", "binary", "latin-1", "no-tokens"],
)
def test_prepare_refuses_a_corpus_without_documents(tmp_path, tiny_tokenizer, capsys, content, message):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    assert _prepare_cli(path, tiny_tokenizer, tmp_path / "out") == 2
    _one_line_error(capsys, str(path), message.format(path=path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


# ---------------------------------------------------------------------------------------------
# 3. Ctrl-C: one line, exit 130, and the rerun resumes.


def test_ctrl_c_during_prepare_is_one_line_and_the_rerun_finishes(
    tmp_path, corpus_file, tiny_tokenizer, capsys, monkeypatch
):
    tokenize_chunk = prepare_module._tokenize_chunk
    monkeypatch.setattr(prepare_module, "_tokenize_chunk", _raise(KeyboardInterrupt))
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "out") == 130
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if line.strip() and not line.startswith("prepare ")] == [INTERRUPTED]
    assert (tmp_path / "out.partial" / "progress.json").is_file()

    monkeypatch.setattr(prepare_module, "_tokenize_chunk", tokenize_chunk)
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "out") == 0
    assert sum(len(load_documents(tmp_path / "out", split)) for split in SPLITS) == 40
    assert not (tmp_path / "out.partial").exists()


def test_real_ctrl_c_reaches_idle_workers_without_a_traceback(tmp_path, corpus_file, tiny_tokenizer):
    """SIGINT goes to the whole process group; the tokenizer workers must stay quiet."""
    script = tmp_path / "interrupted.py"
    script.write_text(textwrap.dedent(
        """
        import os, signal, sys
        import albert_jax.cli
        from albert_jax.data import prepare

        def run_then_interrupt(self, chunks):
            yield from run(self, chunks)
            os.killpg(0, signal.SIGINT)  # every chunk is done: the workers are idle
            signal.pause()

        if __name__ == "__main__":
            run, prepare._ChunkRunner._run = prepare._ChunkRunner._run, run_then_interrupt
            sys.exit(albert_jax.cli.main(sys.argv[1:]))
        """
    ))  # fmt: skip
    command = [sys.executable, script, "data", "prepare", "--input", corpus_file, "--tokenizer",
               tiny_tokenizer.path, "--output", tmp_path / "out", "--num-workers", 2]  # fmt: skip
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # its own process group, so the signal spares pytest
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    err = [line for line in result.stderr.splitlines() if line.strip() and "prepare out" not in line]
    assert (result.returncode, err) == (130, [INTERRUPTED]), result.stderr


# ---------------------------------------------------------------------------------------------
# 4. `data inspect --json | head -1`: the reader leaves, the command ends quietly.


def test_inspect_into_a_closed_pipe_ends_quietly(tiny_prepared_dir, tiny_tokenizer, capsys, monkeypatch):
    read_end, write_end = os.pipe()
    os.close(read_end)
    with io.TextIOWrapper(io.FileIO(write_end, "w")) as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        code = _main("data", "inspect", tiny_prepared_dir, "--tokenizer", tiny_tokenizer.path,
                     "--num-examples", 20, "--max-seq-length", 128, "--json")  # fmt: skip
        stdout.write("after the reader left: nowhere\n")
        stdout.flush()  # stdout now leads to /dev/null: nothing fails at exit
    assert code == 141
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# 5. Outputs that cannot be written, and bad worker counts.


def test_prepare_output_that_cannot_be_written(tmp_path, corpus_file, tiny_tokenizer, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("keep me")
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "a-file") == 2
    _one_line_error(capsys, "a-file' exists and is not this preparation")
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "a-file" / "out") == 2
    _one_line_error(capsys, "a-file/out.partial'", "Not a directory")
    assert (tmp_path / "a-file").read_text() == "keep me"

    # A read-only parent; simulated, since permissions do not bind root.
    mkdir = pathlib.Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.parent == tmp_path / "read-only":
            raise PermissionError(13, "Permission denied", str(self))
        return mkdir(self, *args, **kwargs)

    (tmp_path / "read-only").mkdir()
    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "read-only" / "out") == 2
    _one_line_error(capsys, "read-only/out.partial'", "Permission denied")
    assert list((tmp_path / "read-only").iterdir()) == []


def test_prepare_refuses_a_negative_worker_count(tmp_path, corpus_file, tiny_tokenizer, capsys):
    assert _prepare_cli(corpus_file, tiny_tokenizer, tmp_path / "out", "--num-workers", -1) == 2
    _one_line_error(capsys, "num_workers must be 0 or more, got -1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt"]


# ---------------------------------------------------------------------------------------------
# 7. `tokenizer train` says what is wrong with its input.


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no sentences found in '{path}'"),
        (b"\n \n\n", "no sentences found in '{path}'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8 text at {path}:1 (it holds NUL bytes)"),
        (_gzip_corrupt_after(b"Fine text.\n" * 1000), "cannot read '{path}'"),
    ],
    ids=["empty", "blank-lines", "binary", "corrupt-gz-halfway"],
)
def test_tokenizer_train_says_what_is_wrong(tmp_path, capsys, content, message):
    path = tmp_path / ("corpus.txt.gz" if content.startswith(b"\x1f\x8b") else "corpus.txt")
    path.write_bytes(content)
    assert _main("tokenizer", "train", "--input", path, "--vocab-size", 50, "--output", tmp_path / "tok") == 2
    _one_line_error(capsys, message.format(path=path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_tokenizer_training_passes_ctrl_c_through(tmp_path):
    def texts() -> Iterator[str]:
        yield "Some text to train on."
        raise KeyboardInterrupt

    # SentencePiece would turn it into a RuntimeError("KeyboardInterrupt ...").
    with pytest.raises(KeyboardInterrupt):
        Tokenizer.train(texts(), 50, output_prefix=tmp_path / "tok")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# 8. A corrupt .gz: one line naming it; this run's partial output goes, an earlier run's stays.


def test_prepare_of_a_corrupt_gz_leaves_nothing_behind(tmp_path, corpus_file, tiny_tokenizer, capsys):
    path = tmp_path / "corpus.txt.gz"
    path.write_bytes(_gzip_corrupt_after(corpus_file.read_bytes()))
    assert _prepare_cli(path, tiny_tokenizer, tmp_path / "out") == 2
    _one_line_error(capsys, f"cannot read '{path}'", "invalid block type")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.txt", "corpus.txt.gz"]


class _Corpus(Corpus):
    """Documents from a list, raising `error` before document `fail_at` if given."""

    def __init__(self, documents: list[Document], fail_at: int | None = None,
                 error: BaseException | None = None) -> None:  # fmt: skip
        self.documents, self.fail_at, self.error = documents, fail_at, error

    @property
    def identity(self) -> dict[str, Any]:
        return {"source": "test", "size": len(self.documents)}

    def __iter__(self) -> Iterator[Document]:
        for index, document in enumerate(self.documents):
            if index == self.fail_at:
                raise self.error
            yield document


def test_bad_input_keeps_what_an_earlier_run_stored(tmp_path, builtin_documents, tiny_tokenizer):
    documents = builtin_documents[:100]
    settings = dict(num_workers=0, chunk_chars=2_000, shard_bytes=5_000, progress=False)
    output, partial = tmp_path / "out", tmp_path / "out.partial"
    corrupt = InputError("cannot read 'corpus.txt.gz': invalid block type")

    # Documents were stored before the input turned out bad: this run's alone, so removed.
    with pytest.raises(InputError, match="invalid block type"):
        prepare(_Corpus(documents, 60, corrupt), tiny_tokenizer, output, **settings)
    assert not partial.exists() and not output.exists()

    # An interrupted run stored documents; the rerun then meets bad input: they stay.
    with pytest.raises(KeyboardInterrupt):
        prepare(_Corpus(documents, 30, KeyboardInterrupt()), tiny_tokenizer, output, **settings)
    stored = json.loads((partial / "progress.json").read_text())["counts"]["documents"]
    assert sum(stored.values()) > 0
    with pytest.raises(InputError, match="invalid block type"):
        prepare(_Corpus(documents, 60, corrupt), tiny_tokenizer, output, **settings)
    assert (partial / "progress.json").is_file()
    summary = prepare(_Corpus(documents), tiny_tokenizer, output, **settings)
    assert sum(summary.documents.values()) == 100 and not partial.exists()


# ---------------------------------------------------------------------------------------------
# Text files: binary data is refused up front, stray bad lines are skipped, names are literal.


def test_text_files_tell_text_from_binary_data(tmp_path):
    stray = tmp_path / "stray.txt"
    stray.write_bytes(b"Good.\n\xff bad\nGood again.\nAnd more.\n")
    assert list(TextFiles([stray])) == [["Good.", "Good again.", "And more."]]

    mostly_bad = tmp_path / "mostly-bad.txt"
    mostly_bad.write_bytes(b"Good.\n\xff bad\n\xfe bad\n")
    with pytest.raises(InputError, match=f"not UTF-8 text at {mostly_bad}:2$"):
        TextFiles([mostly_bad])
    nul = tmp_path / "nul.txt.gz"
    nul.write_bytes(gzip.compress(b"Text.\n" * 5 + b"\x00\x01\x02\n"))
    with pytest.raises(InputError, match=f"not UTF-8 text at {nul}:6 "):
        TextFiles([nul])

    # A long line whose first 8 KiB end inside a character is still text.
    long_line = tmp_path / "long.txt"
    long_line.write_text("a" + "é" * 10_000 + "\n")
    assert list(TextFiles([long_line])) == [["a" + "é" * 10_000]]


def test_text_files_take_an_existing_name_literally(tmp_path):
    (tmp_path / "data[1].txt").write_text("Bracketed.\n")
    (tmp_path / "data1.txt").write_text("Not this one.\n")
    assert list(TextFiles([tmp_path / "data[1].txt"])) == [["Bracketed."]]
    assert list(TextFiles([str(tmp_path / "data[0-9].txt")])) == [["Not this one."]]


def _raise(error: type[BaseException]):
    def raiser(*args: object) -> None:
        raise error

    return raiser
