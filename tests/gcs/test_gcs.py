"""Runs whose every file lives in Cloud Storage (`gs://`), against a local emulator: the workdir,
the prepared dataset and the tokenizer; pretrained models read and written there; two processes
that share nothing but the bucket."""

import itertools
import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from etils import epath
from flax import nnx

from albert_jax import AlbertForPreTraining
from albert_jax.data.corpus import BuiltinCorpus
from albert_jax.data.tokenizer import Tokenizer
from albert_jax.train import checkpoint
from tests.train.helpers import TINY_CONFIG, cli_env, free_port

KILL_WORKER = str(epath.Path(__file__).with_name("kill_worker.py"))


def _fresh(path: str) -> epath.Path:
    """`path`, with what this process's gcsfs remembers of the bucket's listings forgotten: other
    processes (and tensorstore, in this one) wrote there since."""
    from etils.epath import backend

    backend.fsspec_backend.fs(path).invalidate_cache()
    return epath.Path(path)


def _losses(workdir) -> dict[int, float]:
    lines = (epath.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines) if "loss" in r}


def _run(*args, compile_cache, program=("-m", "albert_jax.cli"), devices=1, **popen):
    command = [sys.executable, *program, *map(str, args)]
    env = cli_env(devices, compile_cache)
    if popen:
        return subprocess.Popen(command, env=env, **popen)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)


def _check(result):
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="session")
def corpus(gcs_emulator, tmp_path_factory):
    """(data config overrides, local and gs://) of one small corpus: a 256-piece tokenizer and the
    dataset `prepare` wrote straight to gs:// and to a local folder."""
    from albert_jax.data.corpus import TextFiles
    from albert_jax.data.prepare import prepare

    root = tmp_path_factory.mktemp("gcs_corpus")
    text = root / "corpus.txt"
    text.write_text("\n\n".join("\n".join(s) for s in itertools.islice(BuiltinCorpus(), 200)) + "\n")
    tokenizer = Tokenizer.train([text], 256, output_prefix=root / "tokenizer")
    remote = epath.Path("gs://albert-jax-test/corpus")
    (remote / "tokenizer.model").write_bytes((root / "tokenizer.model").read_bytes())
    for output in (root / "prepared", remote / "prepared"):
        prepare(TextFiles([text]), tokenizer, output, num_workers=0, progress=False)
    data = lambda where: [f"--config.data.source={where / 'prepared'}",  # noqa: E731
                          f"--config.data.tokenizer={where / 'tokenizer.model'}"]
    return {"local": data(epath.Path(root)), "gs": data(remote)}


@pytest.fixture(scope="session")
def runs(corpus, gcs_emulator, compile_cache, tmp_path_factory):
    """A run killed after its first checkpoint and rerun to its end, all in gs://; and the same
    run uninterrupted in a local workdir."""
    local = tmp_path_factory.mktemp("gcs_local_run")
    _check(_run("pretrain", "--config", TINY_CONFIG, "--workdir", local, *corpus["local"],
                compile_cache=compile_cache))
    remote = "gs://albert-jax-test/run"
    killed = _run("pretrain", "--config", TINY_CONFIG, "--workdir", remote, *corpus["gs"],
                  program=(KILL_WORKER, "7"), compile_cache=compile_cache)
    assert killed.returncode == -9, killed.stderr[-3000:]
    saved_when_killed = checkpoint.saved_steps(_fresh(remote))
    resumed = _check(_run("pretrain", "--config", TINY_CONFIG, "--workdir", remote, *corpus["gs"],
                          compile_cache=compile_cache))
    return {"local": local, "gs": remote, "saved_when_killed": saved_when_killed, "resumed": resumed}


def test_a_run_killed_in_gcs_resumes_to_the_losses_of_an_uninterrupted_one(runs):
    assert runs["saved_when_killed"] == [5]
    assert f"resuming from {runs['gs']}/checkpoints/5" in runs["resumed"].stderr
    local, remote = _losses(runs["local"]), _losses(runs["gs"])
    assert sorted(remote) == list(range(1, 11))
    assert remote == local
    workdir = _fresh(runs["gs"])
    for name in ("config.json", "spiece.model"):
        assert (workdir / name).read_bytes() == (epath.Path(runs["local"]) / name).read_bytes(), name
    assert json.loads((workdir / "train_config.json").read_text())["data"]["source"].startswith("gs://")
    assert sorted(checkpoint.saved_steps(workdir)) == [5, 10]
    assert [p.name.startswith("events.out.tfevents") for p in (workdir / "tensorboard").iterdir()] == [True, True]


def test_plot_writes_to_gcs(runs, compile_cache):
    _check(_run("plot", runs["gs"], compile_cache=compile_cache))
    assert (epath.Path(runs["gs"]) / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _params(model) -> dict:
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_from_pretrained_and_save_pretrained_in_gcs(runs, gcs_dir):
    from_workdir = AlbertForPreTraining.from_pretrained(_fresh(runs["gs"]))
    expected = _params(AlbertForPreTraining.from_pretrained(runs["local"]))
    jax.tree.map(np.testing.assert_array_equal, _params(from_workdir), expected)
    for layout in ("hf", "native"):
        from_workdir.save_pretrained(f"{gcs_dir}/{layout}", layout=layout)
        loaded = AlbertForPreTraining.from_pretrained(f"{gcs_dir}/{layout}")
        jax.tree.map(np.testing.assert_array_equal, _params(loaded), expected)


def test_init_from_gcs(runs, gcs_dir, corpus):
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import config as config_lib
    from albert_jax.train import loop

    model = AlbertForPreTraining.from_pretrained(_fresh(runs["gs"]))
    model.save_pretrained(f"{gcs_dir}/hf")
    config = config_lib.load_config(TINY_CONFIG, [f"--config.init_from={gcs_dir}/hf", *corpus["gs"]])
    checked = loop.check_input(resolve(config), f"{gcs_dir}/fresh")
    pretrained = jax.tree.map(np.asarray, checked.pretrained)
    jax.tree.map(np.testing.assert_array_equal, pretrained, _params(model))
    assert not epath.Path(f"{gcs_dir}/fresh").exists()  # checks write nothing


def test_two_processes_share_only_gcs(runs, corpus, gcs_dir, compile_cache, tmp_path):
    """Each process sees its own local files only; everything they share is in the bucket."""
    port = free_port()
    mesh = ["--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.num_train_steps=6"]
    processes = [_run("pretrain", "--config", TINY_CONFIG, "--workdir", gcs_dir, *corpus["gs"], *mesh,
                      "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", 2, "--process-id", i,
                      devices=2, compile_cache=compile_cache, stdout=subprocess.PIPE,
                      stderr=open(tmp_path / f"stderr_{i}", "w"), text=True)
                 for i in range(2)]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for i, process in enumerate(processes):
        assert process.returncode == 0, (tmp_path / f"stderr_{i}").read_text()[-3000:]
    assert sorted(checkpoint.saved_steps(_fresh(gcs_dir))) == [5, 6]
    assert sorted(_losses(gcs_dir)) == list(range(1, 7))
    # Only process 0 writes: the other's files would have raced it in the bucket.
    assert ["step 6:" in output for output in outputs] == [True, False]
    assert (epath.Path(gcs_dir) / "spiece.model").exists()


def test_a_tokenizer_trains_straight_into_gcs(gcs_dir, tmp_path, compile_cache):
    text = tmp_path / "corpus.txt"
    text.write_text("\n\n".join("\n".join(s) for s in itertools.islice(BuiltinCorpus(), 100)) + "\n")
    prefix = f"{gcs_dir}/tokenizer/pieces"
    train = ("tokenizer", "train", "--input", text, "--vocab-size", 256, "--output", prefix)
    assert f"wrote {prefix}.model and {prefix}.vocab" in _check(_run(*train, compile_cache=compile_cache)).stdout

    model = _fresh(prefix + ".model")
    assert len(_fresh(prefix + ".vocab").read_text().splitlines()) == 256
    assert Tokenizer.load(model).encode("the python interpreter")
    again = _run(*train, compile_cache=compile_cache)
    assert again.returncode == 2 and f"{prefix}.model' exists" in again.stderr
