"""Resuming: after SIGKILL, a rerun continues from the last checkpoint with exactly the losses
of an uninterrupted run; SIGTERM saves and stops cleanly. Both on the real data pipeline."""

import json
import shutil
import signal
import subprocess

import pytest

from tests.train.helpers import TINY_CONFIG, losses, snapshot

STEPS = 60


@pytest.fixture
def corpus_args(prepared_corpus):
    tokenizer, dataset = prepared_corpus
    return [f"--config.data.source={dataset}", f"--config.data.tokenizer={tokenizer}",
            f"--config.num_train_steps={STEPS}", "--config.checkpoint_every_steps=7",
            "--config.eval_every_steps=20", "--config.eval_steps=1"]


def checkpoint_steps(workdir):
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def start_and_stop_at(run_cli, workdir, args, step, sig):
    """Starts a run and sends `sig` once it has logged `step`; returns its exit code."""
    process = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir, *args,
                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if line.startswith(f"step {step}:"):
            process.send_signal(sig)
            break
    process.stdout.read()
    return process.wait(timeout=300)


def test_sigkill_then_rerun_continues_exactly(run_cli, tmp_path, corpus_args):
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", tmp_path / "whole", *corpus_args)
    expected = losses(tmp_path / "whole")

    killed = tmp_path / "killed"
    assert start_and_stop_at(run_cli, killed, corpus_args, 30, signal.SIGKILL) == -signal.SIGKILL
    saved = checkpoint_steps(killed)
    assert saved and saved[-1] < STEPS, "the kill should land before the end of the run"

    rerun = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", killed, *corpus_args)
    assert f"resuming from {killed / 'checkpoints'}/{saved[-1]}" in rerun.stderr
    resumed = losses(killed)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    for step in range(saved[-1] + 1, STEPS + 1):
        assert resumed[step] == expected[step], f"step {step}"


def test_sigterm_saves_at_the_current_step_and_exits_cleanly(run_cli, tmp_path, corpus_args):
    workdir = tmp_path / "preempted"
    assert start_and_stop_at(run_cli, workdir, corpus_args, 10, signal.SIGTERM) == 0
    stopped_at = checkpoint_steps(workdir)[-1]
    assert 10 <= stopped_at < STEPS
    assert stopped_at == max(losses(workdir)), "the checkpoint should be of the last step run"
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir, *corpus_args)
    assert checkpoint_steps(workdir)[-1] == STEPS


def test_rerunning_a_finished_run_changes_nothing(run_cli, trained_workdir):
    before = snapshot(trained_workdir)
    result = run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", trained_workdir,
                     "--config.num_train_steps=2")
    assert "already trained to step 2" in result.stderr
    assert snapshot(trained_workdir) == before


def test_resume_accepts_changes_that_keep_it_exact(run_cli, trained_workdir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained_workdir, workdir)
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir, "--config.num_train_steps=3",
            "--config.log_every_steps=2", "--config.checkpoint_every_steps=3")
    assert max(losses(workdir)) == 3
    record = json.loads((workdir / "config_changes.jsonl").read_text().splitlines()[-1])
    assert record["resumed_at_step"] == 2 and record["accepted_by"] == "resumable"
    assert "num_train_steps: 2 -> 3" in record["changes"]


def test_accept_changes_continues_a_changed_run_and_records_it(run_cli, trained_workdir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(trained_workdir, workdir)
    run_cli("pretrain", "--config", TINY_CONFIG, "--workdir", workdir, "--config.num_train_steps=3",
            "--config.seed=1", "--config.accept_changes=true")
    record = json.loads((workdir / "config_changes.jsonl").read_text().splitlines()[-1])
    assert record["accepted_by"] == "accept_changes" and "seed: 0 -> 1" in record["changes"]
    assert json.loads((workdir / "train_config.json").read_text())["seed"] == 1
