"""Hostile arguments to the `albert-jax` commands, as a user would type them: config files that
are not Python or take no argument, impossible process layouts, outputs that are files, under a
file or read-only. Each is refused with one line naming the fault and exit status 2 (after
argparse's usage line, for a malformed option), never a traceback, and nothing in the test's
folder changes. The commands run in this process; one that passed every check would stop where
training starts (and fail the test).

Config values and workdirs of `pretrain` are fuzzed in tests/train/test_config_fuzz.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import albert_jax.cli
from albert_jax.train import loop
from tests.train.helpers import TINY_CONFIG

CORPUS = "A first sentence to train on.\nAnd a second one.\n\nAnother document here.\n"


class ReachedTraining(Exception):
    """Raised where training would start: the command accepted what it should have refused."""


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """A folder of hostile files, with training stopped before it starts."""

    def reached(checked):
        raise ReachedTraining

    monkeypatch.setattr(loop, "_train", reached)
    monkeypatch.chdir(tmp_path)  # where a default workdir would appear
    (tmp_path / "file").write_text("a user's file\n")
    (tmp_path / "syntax.py").write_text("from albert_jax.train.config import default_config\n"
                                        "def get_config(:\n")
    (tmp_path / "config.json").write_text('{"learning_rate": 0.1}\n')
    (tmp_path / "nul.py").write_bytes(b"def get_config():\x00\n")
    (tmp_path / "sized.py").write_text("def get_config(size):\n    raise AssertionError\n")
    (tmp_path / "corpus.txt").write_text(CORPUS)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 5.0}\n')
    return tmp_path


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """A 32-piece tokenizer of CORPUS, kept outside the tests' folders."""
    from albert_jax.data.tokenizer import Tokenizer

    corpus = tmp_path_factory.mktemp("tokenizer") / "corpus.txt"
    corpus.write_text(CORPUS)
    return Tokenizer.train([corpus], 32, output_prefix=corpus.with_name("tokenizer"))


def tree(directory: Path) -> dict[str, bytes | None]:
    """Every path under `directory`, with a file's contents: to show that nothing changed."""
    return {str(p.relative_to(directory)): p.read_bytes() if p.is_file() else None
            for p in sorted(directory.rglob("*"))}


def run(*argv: object) -> tuple[int | str, str]:
    """(exit status, stderr) of `albert-jax ARGV` in this process."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        try:
            status: int | str = albert_jax.cli.main([str(arg) for arg in argv])
        except ReachedTraining:
            status = "reached training"
        except SystemExit as exit_:  # argparse's refusal of a malformed option
            status = exit_.code
    return status, stderr.getvalue()


def assert_refused(status: int | str, stderr: str, command: str, message: str) -> None:
    lines = stderr.strip().splitlines()
    assert status == 2, stderr
    assert "Traceback" not in stderr
    # Only argparse precedes the error with its usage, which names the command too.
    assert all(line.startswith(("usage: ", " ")) for line in lines[:-1]), stderr
    assert lines[-1].startswith(f"albert-jax {command}: error: "), stderr
    assert message in lines[-1], lines[-1]


TOKENIZER = ["tokenizer", "train", "--input", "{root}/corpus.txt", "--vocab-size", "20"]
CLUSTER = ["--coordinator-address", "127.0.0.1:8476"]
CASES = {
    # Config files that are not a config, for each command that reads one.
    "syntax-error": (["pretrain", "--config", "{root}/syntax.py"],
                     "config file {root}/syntax.py:2 is not valid Python: "),
    "syntax-error-compile": (["compile", "--config", "{root}/syntax.py", "--topology", "v5e:2x2"],
                             "config file {root}/syntax.py:2 is not valid Python: "),
    "syntax-error-finetune": (["finetune", "--config", "{root}/syntax.py"],
                              "config file {root}/syntax.py:2 is not valid Python: "),
    "not-python": (["pretrain", "--config", "{root}/config.json"],
                   "config file {root}/config.json is not a Python file (.py) defining get_config(arg)"),
    "binary": (["pretrain", "--config", "{root}/nul.py"],
               "config file {root}/nul.py is not valid Python: source code string cannot contain null bytes"),
    "argument-to-a-config-without": (["pretrain", "--config", f"{TINY_CONFIG}:v2"],
                                     f"{TINY_CONFIG}: get_config() does not take the argument 'v2'"),
    "argument-to-a-shipped-config-without": (["pretrain", "--config", "pretrain/tiny.py:v2"],
                                             "tiny.py: get_config() does not take the argument 'v2'"),
    "argument-missing": (["pretrain", "--config", "{root}/sized.py"],
                         "{root}/sized.py: get_config(size) needs an argument: give it after ':' in "
                         "--config, e.g. sized.py:ARG"),
    # Process layouts JAX would refuse with a traceback.
    "no-processes": (["pretrain", "--config", TINY_CONFIG, *CLUSTER, "--num-processes", "0",
                      "--process-id", "0"], "argument --num-processes: must be at least 1, got 0"),
    "process-id-too-large": (["pretrain", "--config", TINY_CONFIG, *CLUSTER, "--num-processes", "2",
                              "--process-id", "2"],
                             "--process-id 2 is not below --num-processes 2: the processes are numbered 0 to 1"),
    "process-id-too-large-finetune": (["finetune", "--config", TINY_CONFIG, *CLUSTER, "--process-id", "5",
                                       "--num-processes", "4"], "--process-id 5 is not below --num-processes 4"),
    "negative-process-id": (["pretrain", "--config", TINY_CONFIG, *CLUSTER, "--num-processes", "2",
                             "--process-id", "-1"], "argument --process-id: must be at least 0, got -1"),
    "address-without-port": (["pretrain", "--config", TINY_CONFIG, "--coordinator-address", "localhost",
                              "--num-processes", "2", "--process-id", "0"],
                             "argument --coordinator-address: expected HOST:PORT, e.g. 10.0.0.2:8476, "
                             "got 'localhost'"),
    "plot-a-file": (["plot", "{root}/metrics.jsonl"],
                    "{root}/metrics.jsonl is a file: give the run's workdir, the folder that holds metrics.jsonl"),
    # Outputs where a file is.
    "tokenizer-output-under-a-file": ([*TOKENIZER, "--output", "{root}/file/tokenizer"],
                                      "cannot write '{root}/file': a file, not a directory"),
}


@pytest.mark.parametrize("case", CASES)
def test_refused_with_one_line_and_nothing_written(case, root):
    argv, message = CASES[case]
    before = tree(root)
    status, stderr = run(*(arg.format(root=root) for arg in argv))
    assert_refused(status, stderr, argv[0], message.format(root=root))
    assert tree(root) == before


@pytest.mark.parametrize("variable, value, message", [
    ("JAX_NUM_PROCESSES", "0", "environment variable JAX_NUM_PROCESSES: must be at least 1, got 0"),
    ("JAX_NUM_PROCESSES", "two", "environment variable JAX_NUM_PROCESSES: not an integer: 'two'"),
    ("JAX_PROCESS_ID", "-1", "environment variable JAX_PROCESS_ID: must be at least 0, got -1"),
    ("JAX_COORDINATOR_ADDRESS", "localhost", "environment variable JAX_COORDINATOR_ADDRESS: expected "
     "HOST:PORT, e.g. 10.0.0.2:8476, got 'localhost'"),
    ("JAX_PROCESS_ID", "2", "process id 2 is not below the number of processes 2"),
])
def test_a_bad_cluster_variable_is_named(variable, value, message, root, monkeypatch):
    cluster = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:8476", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}
    for name, text in (cluster | {variable: value}).items():
        monkeypatch.setenv(name, text)
    before = tree(root)
    status, stderr = run("pretrain", "--config", TINY_CONFIG)
    assert_refused(status, stderr, "pretrain", message)
    assert tree(root) == before


@pytest.fixture
def read_only(root) -> Path:
    """A read-only folder: a read-only tmpfs for root (whom permissions do not bind), else one
    without write permission."""
    folder = root / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o500)
        yield folder
        folder.chmod(0o700)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("running as root without permission to mount: nothing is read-only to root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("argv, message", [
    (["pretrain", "--config", TINY_CONFIG, "--workdir", "{folder}"], "{folder} is not writable"),
    (["pretrain", "--config", TINY_CONFIG, "--workdir", "{folder}/run"], "{folder} is not writable"),
    ([*TOKENIZER, "--output", "{folder}/tokenizer"], "cannot write '{folder}': "),
    (["data", "prepare", "--input", "{root}/corpus.txt", "--tokenizer", "{tokenizer}", "--output",
      "{folder}/prepared"], "cannot write '{folder}/prepared.partial': "),
    (["plot", "{root}", "--output", "{folder}/curves.png"], "cannot write '{folder}/curves.png': "),
], ids=["pretrain-workdir", "pretrain-workdir-inside", "tokenizer-output", "prepare-output",
        "plot-output"])
def test_a_read_only_output_is_refused(argv, message, root, read_only, tokenizer):
    before = tree(root)
    status, stderr = run(*(arg.format(root=root, folder=read_only, tokenizer=tokenizer.path) for arg in argv))
    assert_refused(status, stderr, argv[0], message.format(folder=read_only))
    assert tree(root) == before


LONG = "x" * 300  # a name longer than file systems allow; the workdir's: tests/train/test_config_fuzz.py


@pytest.mark.parametrize("argv, message", [
    ([*TOKENIZER, "--output", "{root}/{long}/tokenizer"],
     "cannot use '{root}/{long}/tokenizer.model': File name too long"),
    (["data", "prepare", "--input", "{root}/corpus.txt", "--tokenizer", "{tokenizer}", "--output",
      "{root}/{long}/prepared"], "cannot use '{root}/{long}/prepared': File name too long"),
    (["plot", "{root}", "--output", "{root}/{long}.png"], "cannot write '{root}/{long}.png': File name too long"),
], ids=["tokenizer-output", "prepare-output", "plot-output"])
def test_a_path_the_file_system_refuses_is_one_line(argv, message, root, tokenizer):
    before = tree(root)
    status, stderr = run(*(arg.format(root=root, long=LONG, tokenizer=tokenizer.path) for arg in argv))
    assert_refused(status, stderr, argv[0], message.format(root=root, long=LONG))
    assert tree(root) == before


def test_a_vocabulary_the_builtin_corpus_cannot_make_says_what_to_set(root, monkeypatch):
    """`--config configs/pretrain/base.py` on the built-in corpus: its 30000 pieces are more than
    the corpus holds. Here a two-document stand-in for it, which cannot make the tiny model's 256."""
    from albert_jax.data import builtin_dataset
    from albert_jax.data.corpus import Corpus

    class SmallCorpus(Corpus):
        identity = {"source": "a small stand-in for the built-in corpus"}

        def __iter__(self):
            return iter([["A first sentence.", "A second one."], ["Another document."]])

    monkeypatch.setattr(builtin_dataset, "BuiltinCorpus", SmallCorpus)
    monkeypatch.setenv("ALBERT_JAX_CACHE", str(root / "cache"))
    (root / "cache").mkdir()
    before = tree(root)
    status, stderr = run("pretrain", "--config", TINY_CONFIG, "--config.data.source=builtin",
                         "--workdir", root / "run")
    assert_refused(status, stderr, "pretrain", "the built-in corpus (data.source=builtin), a small "
                   "corpus to try albert_jax on, cannot make a 256-piece tokenizer (tokenizer training "
                   "failed: Vocabulary size too high (256)")
    assert "set --config.data.source to a dataset made by `albert-jax data prepare`" in stderr
    assert tree(root) == before  # no workdir, and no cache folder holding only a stale lock


def test_a_dataset_without_training_documents_is_refused_before_the_workdir(root, tokenizer):
    """A prepared dataset whose every document was held out for evaluation."""
    from albert_jax.data.corpus import TextFiles
    from albert_jax.data.prepare import prepare

    summary = prepare(TextFiles([root / "corpus.txt"]), tokenizer, root / "prepared",
                      eval_fraction=0.999, num_workers=0, progress=False)
    assert summary.documents == {"train": 0, "validation": 2}
    before = tree(root)
    status, stderr = run("pretrain", "--config", TINY_CONFIG, "--workdir", root / "run",
                         f"--config.data.source={root / 'prepared'}", f"--config.data.tokenizer={tokenizer.path}",
                         "--config.model.vocab_size=32")
    assert_refused(status, stderr, "pretrain", f"the prepared dataset '{root / 'prepared'}' has no training documents")
    assert tree(root) == before


@pytest.mark.parametrize("argv", [
    ["pretrain", "--config", TINY_CONFIG, "--workdir", "run"],
    ["predict", "--workdir", "run", "--input", "file", "--output", "out.jsonl"],
], ids=["pretrain", "predict"])
def test_a_backend_that_jax_platforms_names_and_cannot_start_is_one_line(argv, root):
    """Run in a new process: this one's JAX backend has started already."""
    before = tree(root)
    result = subprocess.run([sys.executable, "-m", "albert_jax.cli", *argv], cwd=root, capture_output=True,
                            env=dict(os.environ, JAX_PLATFORMS="nosuchchip"), text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"albert-jax {argv[0]}: error: JAX_PLATFORMS='nosuchchip' names a backend JAX cannot start here "
        "(Unable to initialize backend 'nosuchchip'")
    assert tree(root) == before
