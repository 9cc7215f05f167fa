"""Bad input to `albert-jax finetune`: one line naming the file and the line or column, exit 2,
and no workdir written."""

from __future__ import annotations

import json
import logging

import pytest

from albert_jax.cli import main

# In-process commands compile through the session's cache (not the user's albert_jax cache).
pytestmark = pytest.mark.usefixtures("in_process_cache")
CLASSIFICATION = "finetune/classification.py"


def fails_cleanly(capsys, workdir, args, message):
    assert main(["finetune", "--workdir", str(workdir), *args]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("albert-jax finetune: error:"), error
    assert message in error[-1], error[-1]
    assert not workdir.exists(), "nothing may be written for a refused run"


def table(path, rows):
    path.write_text("\n".join("\t".join(row) for row in rows) + "\n")
    return path


@pytest.fixture
def local_args(pretrained_dir, sentiment_files):
    train, dev = sentiment_files
    return ["--config", CLASSIFICATION, f"--config.init_from={pretrained_dir}",
            "--config.data.text_column=sentence", f"--config.data.train_file={train}",
            f"--config.data.dev_file={dev}"]


def test_a_missing_column(capsys, tmp_path, local_args):
    fails_cleanly(capsys, tmp_path / "run", [*local_args, "--config.data.text_column=text"],
                  ":1: no column 'text'; the columns are 'sentence', 'label'")


def test_a_dev_label_the_training_file_lacks(capsys, tmp_path, local_args):
    dev = table(tmp_path / "dev.tsv", [("sentence", "label"), ("a good mat", "pos"), ("the cat", "meh")])
    fails_cleanly(capsys, tmp_path / "run", [*local_args, f"--config.data.dev_file={dev}"],
                  f"{dev}:3")


def test_an_empty_training_file(capsys, tmp_path, local_args):
    empty = tmp_path / "train.tsv"
    empty.write_text("")
    fails_cleanly(capsys, tmp_path / "run", [*local_args, f"--config.data.train_file={empty}"],
                  str(empty))


def test_a_malformed_race_file(capsys, tmp_path, pretrained_dir, race_dir):
    import shutil

    broken = tmp_path / "RACE"
    shutil.copytree(race_dir, broken)
    bad = broken / "train" / "high" / "0.txt"
    bad.write_text(json.dumps({"id": "x", "article": "a", "questions": ["q"], "options": [["a", "b"]],
                               "answers": ["A"]}))
    fails_cleanly(capsys, tmp_path / "run", ["--config", "finetune/race.py",
                  f"--config.init_from={pretrained_dir}", f"--config.data_dir={broken}"], str(bad))


def test_a_conll_line_with_the_wrong_number_of_fields(capsys, tmp_path, pretrained_dir, conll_files):
    train, dev = conll_files
    broken = tmp_path / "train.txt"
    lines = train.read_text().splitlines()
    lines[3] = lines[3] + " EXTRA"
    broken.write_text("\n".join(lines) + "\n")
    fails_cleanly(capsys, tmp_path / "run", ["--config", "finetune/tagging.py",
                  f"--config.init_from={pretrained_dir}", f"--config.data.train_file={broken}",
                  f"--config.data.dev_file={dev}"], f"{broken}:4")


def test_a_tokenizer_whose_vocabulary_disagrees_with_the_model(capsys, tmp_path, local_args):
    from albert_jax.data.tokenizer import Tokenizer

    text = tmp_path / "text.txt"
    text.write_text("\n".join(f"sentence number {i} with some other words" for i in range(200)) + "\n")
    Tokenizer.train([text], 40, output_prefix=tmp_path / "other")
    fails_cleanly(capsys, tmp_path / "run", [*local_args, f"--config.tokenizer={tmp_path / 'other.model'}"],
                  "pieces but the model's vocab_size is")


def test_an_explicit_length_longer_than_the_model_is_an_error(capsys, tmp_path, local_args):
    fails_cleanly(capsys, tmp_path / "run", [*local_args, "--config.seq_length=256"],
                  "seq_length 256 exceeds the model's max_position_embeddings 128")


def test_a_default_length_longer_than_the_model_is_lowered_with_a_warning(caplog, local_args):
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import config as config_lib

    config = config_lib.load_config(local_args[1], local_args[2:])
    with caplog.at_level(logging.WARNING, logger="albert_jax"):
        run = resolve(config)
    assert run.task.max_length == 128
    assert "default length 512 exceeds the model's max_position_embeddings 128" in caplog.text


def test_no_init_from_warns_loudly(caplog, sentiment_files, pretrained_dir):
    from albert_jax.tasks.registry import resolve
    from albert_jax.train import config as config_lib

    train, dev = sentiment_files
    config = config_lib.load_config(CLASSIFICATION, [
        "--config.model.preset=tiny", f"--config.tokenizer={pretrained_dir / 'spiece.model'}",
        "--config.model.vocab_size=60", "--config.data.text_column=sentence",
        f"--config.data.train_file={train}"])
    with caplog.at_level(logging.WARNING, logger="albert_jax"):
        resolve(config)
    assert "RANDOM weights" in caplog.text
