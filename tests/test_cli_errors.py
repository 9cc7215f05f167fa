"""How every `albert-jax` command ends when things go wrong: Ctrl-C is one line and exit 130; a
reader that leaves early (`| head -1`) ends it quietly; `plot` refuses outputs it cannot write.

This module also serves as a command module (`register`) of test commands, for the parser.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import albert_jax.cli
from albert_jax.errors import InputError

REPOSITORY = Path(__file__).resolve().parents[1]


def register(subparsers: Any) -> None:
    """Test commands: each misbehaves in one way."""
    subparsers.add_parser("interrupted").set_defaults(run=_raise(KeyboardInterrupt))
    resumable = subparsers.add_parser("interrupted-resumable")
    resumable.set_defaults(run=_raise(KeyboardInterrupt), on_interrupt="interrupted; rerun it")
    subparsers.add_parser("endless-output").set_defaults(run=_endless_output)
    subparsers.add_parser("other-broken-pipe").set_defaults(run=_raise(BrokenPipeError))
    subparsers.add_parser("bad-input").set_defaults(run=_raise(InputError("'x.txt' is bad")))


def _raise(error: BaseException | type[BaseException]):
    def run(args: argparse.Namespace, overrides: list[str]) -> int:
        raise error

    return run


def _endless_output(args: argparse.Namespace, overrides: list[str]) -> int:
    while True:
        print("more output than anyone reads")


@pytest.fixture
def fake_commands(monkeypatch):
    monkeypatch.setattr(albert_jax.cli, "_COMMAND_MODULES", (__name__,))


def test_ctrl_c_is_one_line_and_exit_130(fake_commands, capsys):
    assert albert_jax.cli.main(["interrupted"]) == 130
    assert capsys.readouterr().err == "albert-jax interrupted: interrupted\n"
    # A command may say more, e.g. that rerunning it resumes.
    assert albert_jax.cli.main(["interrupted-resumable"]) == 130
    assert capsys.readouterr().err == "albert-jax interrupted-resumable: interrupted; rerun it\n"


def test_bad_input_is_still_one_line_and_exit_2(fake_commands, capsys):
    assert albert_jax.cli.main(["bad-input"]) == 2
    assert capsys.readouterr().err == "albert-jax bad-input: error: 'x.txt' is bad\n"


def test_a_reader_leaving_early_ends_the_command_quietly():
    """`albert-jax ... | head -1`, with a real pipe in a real process."""
    script = (
        "import sys, albert_jax.cli\n"
        f"albert_jax.cli._COMMAND_MODULES = ({__name__!r},)\n"
        "sys.exit(albert_jax.cli.main(['endless-output']))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
    )
    assert process.stdout.readline() == b"more output than anyone reads\n"
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141  # as if killed by SIGPIPE, like `yes | head -1`
    assert err == b""


def test_a_broken_pipe_other_than_stdout_is_not_hidden(fake_commands):
    with pytest.raises(BrokenPipeError):
        albert_jax.cli.main(["other-broken-pipe"])


# ---------------------------------------------------------------------------------------------
# `albert-jax plot --output`


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(albert_jax.cli, "_COMMAND_MODULES", ("albert_jax.train.cli",))
    lines = [{"step": step, "loss": 5.0 / step, "mlm_accuracy": 0.1 * step} for step in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return tmp_path


def _plot(capsys, *argv: object) -> tuple[int, str, str]:
    code = albert_jax.cli.main(["plot", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("albert-jax plot: error: "), err
    for fragment in fragments:
        assert fragment in lines[0]


def test_plot_writes_the_format_its_extension_names(workdir, capsys):
    output = workdir / "curves.svg"
    code, out, _ = _plot(capsys, workdir, "--output", output)
    assert code == 0 and out.strip() == str(output)
    assert output.read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in workdir.iterdir()) == ["curves.svg", "metrics.jsonl"]


@pytest.mark.parametrize("name", ["curves.xyz", "curves"])
def test_plot_refuses_an_output_without_an_image_extension(workdir, capsys, name):
    code, _, err = _plot(capsys, workdir, "--output", workdir / name)
    assert code == 2
    _one_line_error(err, name, "extension must name an image format", ".png", ".svg")
    assert not (workdir / name).exists() and not (workdir / f"{name}.png").exists()


def test_plot_refuses_an_output_in_a_missing_folder(workdir, capsys):
    code, _, err = _plot(capsys, workdir, "--output", workdir / "missing" / "curves.png")
    assert code == 2
    _one_line_error(err, f"folder '{workdir / 'missing'}' does not exist")
    assert not (workdir / "missing").exists()


def test_plot_to_a_read_only_output_keeps_the_old_file(workdir, capsys, monkeypatch):
    from etils import epath

    output = workdir / "curves.png"
    output.write_bytes(b"an earlier plot")

    def read_only(self, target):  # simulated (permissions do not bind root): the rename fails
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr(epath.gpath.PosixGPath, "replace", read_only)
    code, _, err = _plot(capsys, workdir, "--output", output)
    assert code == 2
    _one_line_error(err, f"cannot write '{output}': Permission denied")
    assert output.read_bytes() == b"an earlier plot"
    assert sorted(p.name for p in workdir.iterdir()) == ["curves.png", "metrics.jsonl"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[1, 2]", ":2 is not a JSON object with an integer 'step'"),
        ('{"loss": 1.0}', ":2 is not a JSON object with an integer 'step'"),
        ('{"step": "7", "loss": 1.0}', ":2 is not a JSON object with an integer 'step'"),
        ("\udcff", ":2 is not JSON"),  # a byte that is not UTF-8
    ],
)
def test_plot_names_the_bad_line_of_metrics(workdir, capsys, line, message):
    metrics = workdir / "metrics.jsonl"
    first = metrics.read_text().splitlines()[0]
    metrics.write_bytes(f"{first}\n{line}\n".encode("utf-8", "surrogateescape"))
    code, _, err = _plot(capsys, workdir)
    assert code == 2
    _one_line_error(err, f"{metrics}{message}")


def test_plot_leaves_out_values_that_are_not_numbers(workdir, capsys):
    with (workdir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 4, "loss": "nan?", "note": {"a": 1}, "mlm_accuracy": 0.5}) + "\n")
    from albert_jax.train.plot import read_metrics

    metrics = read_metrics(str(workdir))
    assert metrics["loss"][0] == [1, 2, 3] and metrics["mlm_accuracy"][0] == [1, 2, 3, 4]
    assert "note" not in metrics
    assert _plot(capsys, workdir)[0] == 0
