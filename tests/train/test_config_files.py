"""Which file `--config` names: a path that exists, else a config shipped with albert_jax."""

import importlib.resources
from pathlib import Path

import pytest

from albert_jax import cli
from albert_jax.errors import InputError
from albert_jax.train import config as config_lib
from albert_jax.train.cli import default_workdir

SHIPPED = importlib.resources.files("albert_jax.configs")


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A current directory with no configs/ folder in it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write_config(path: Path, num_train_steps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("from albert_jax.train.config import default_config\n\n"
                    "def get_config():\n"
                    "    config = default_config()\n"
                    f"    config.num_train_steps = {num_train_steps}\n"
                    "    return config\n")


@pytest.mark.parametrize("name", ["configs/pretrain/base.py", "pretrain/base.py", "pretrain/base"])
def test_shipped_configs_are_found_by_name_from_any_directory(elsewhere, name):
    found = config_lib.find_config_file(name)
    assert Path(found).resolve() == Path(SHIPPED / "pretrain" / "base.py").resolve()
    config = config_lib.load_config(f"{name}:v1")
    assert config.model.preset == "base-v1"
    assert default_workdir(f"{name}:v1") == "albert_jax_workdirs/base_v1"


def test_a_file_at_the_path_wins_over_the_shipped_one(elsewhere):
    _write_config(elsewhere / "pretrain" / "base.py", num_train_steps=7)
    assert config_lib.load_config("pretrain/base.py").num_train_steps == 7


def test_the_default_is_the_shipped_tiny_config(elsewhere):
    _write_config(elsewhere / "pretrain" / "tiny.py", num_train_steps=7)
    config = config_lib.load_config(None)
    shipped = config_lib.load_config(str(SHIPPED / "pretrain" / "tiny.py"))
    assert config.num_train_steps != 7
    assert config.to_dict() == shipped.to_dict()


def test_a_missing_config_names_what_was_tried_and_the_shipped_configs(elsewhere):
    with pytest.raises(InputError) as error:
        config_lib.load_config("pretrain/bas.py:v2")
    message = str(error.value)
    assert f"config file 'pretrain/bas.py' does not exist: not at {elsewhere / 'pretrain' / 'bas.py'}" in message
    assert "shipped with albert_jax: finetune/classification.py, " in message
    assert "pretrain/base.py, pretrain/large.py, pretrain/tiny.py" in message


@pytest.mark.parametrize("name", ["configs/pretrain", "pretrain", "mine"])
def test_a_directory_is_named_as_one(elsewhere, name, capsys):
    (elsewhere / "mine").mkdir()
    assert cli.main(["pretrain", "--config", name]) == 2
    err = capsys.readouterr().err
    assert f"error: config '{name}' is a directory, not a config file" in err
    assert "does not exist" not in err and len(err.strip().splitlines()) == 1
