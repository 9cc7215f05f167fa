"""Where fine-tuning starts: the architecture and tokenizer of `init_from` in each layout users
have (an original TF release, a training workdir, a Hugging Face directory)."""

from __future__ import annotations

import json
import shutil

from albert_jax import AlbertConfig
from albert_jax.tasks.registry import resolve
from albert_jax.train import config as config_lib


def resolved(init_from, sentiment_files, *extra):
    train, dev = sentiment_files
    return resolve(config_lib.load_config("finetune/classification.py", [
        f"--config.init_from={init_from}", f"--config.data.train_file={train}",
        "--config.data.text_column=sentence", *extra]))


def test_an_original_tf_release_gives_its_architecture_and_30k_clean_model(tmp_path, pretrained_dir,
                                                                            sentiment_files):
    release = tmp_path / "albert_base"
    release.mkdir()
    config = AlbertConfig.from_json_file(pretrained_dir / "config.json")
    (release / "albert_config.json").write_text(json.dumps(config.to_original_dict()))
    shutil.copy(pretrained_dir / "spiece.model", release / "30k-clean.model")
    run = resolved(release, sentiment_files)
    assert run.task.tokenizer_path == release / "30k-clean.model"
    assert (run.model.hidden_size, run.model.vocab_size) == (config.hidden_size, config.vocab_size)
    assert run.model.label_names == ("neg", "pos") and run.model.classifier_dropout_prob == 0.1


def test_a_training_workdir_gives_its_model_and_tokenizer(tmp_path, pretrained_dir, sentiment_files):
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    shutil.copy(pretrained_dir / "config.json", workdir / "config.json")
    shutil.copy(pretrained_dir / "spiece.model", workdir / "spiece.model")
    run = resolved(workdir, sentiment_files, "--config.model.hidden_dropout_prob=0.1")
    assert run.task.tokenizer_path == workdir / "spiece.model"
    assert run.model.hidden_dropout_prob == 0.1, "model.* keys set in the config change the starting model"


def test_a_directory_without_a_model_config_is_named(tmp_path, sentiment_files):
    import pytest

    from albert_jax.errors import InputError

    with pytest.raises(InputError, match="holds no config.json .* or albert_config.json"):
        resolved(tmp_path, sentiment_files)
