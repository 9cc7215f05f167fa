"""Config files and `--config.key=value` overrides."""

from pathlib import PurePosixPath

import pytest

from albert_jax.errors import InputError
from albert_jax.train import config as config_lib

PRETRAIN = PurePosixPath("pretrain")  # the shipped configs, by name


def test_overrides_are_typed_and_reach_nested_keys():
    config = config_lib.load_config(None, [
        "--config.mesh.fsdp=4", "--config.learning_rate=3e-4", "--config.optimizer=adamw",
        "--config.data.do_whole_word_mask=false", "--config.model.hidden_size=64",
        "--config.rules=(('batch', 'data'),)",
    ])
    assert config.mesh.fsdp == 4
    assert config.learning_rate == 3e-4
    assert config.optimizer == "adamw"
    assert config.data.do_whole_word_mask is False
    assert config_lib.model_config(config).hidden_size == 64
    assert config.rules == (("batch", "data"),)


def test_unknown_key_is_named_with_close_matches():
    with pytest.raises(InputError, match=r"unknown config key 'mesh.fsdb'.*mesh\.fsdp"):
        config_lib.load_config(None, ["--config.mesh.fsdb=2"])
    with pytest.raises(InputError, match=r"'learning_rte'.*learning_rate"):
        config_lib.load_config(None, ["--config.learning_rte=1"])


@pytest.mark.parametrize("override, message", [
    ("--config.num_train_steps=many", "expected an integer"),
    ("--config.mesh=4", "group of settings"),
    ("--config.model.hidden_size=1.5", "expected an integer"),
    ("num_train_steps=5", "unrecognized argument"),
])
def test_bad_override_values(override, message):
    with pytest.raises(InputError, match=message):
        config_lib.load_config(None, [override])


@pytest.mark.parametrize("size", ["base", "large", "xlarge", "xxlarge"])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_size_configs_follow_the_paper(size, version):
    config = config_lib.load_config(f"{PRETRAIN / size}.py:{version}")
    config_lib.validate(config)
    model = config_lib.model_config(config)
    assert model == model.preset(f"{size}-{version}", dtype=model.dtype, remat_policy=model.remat_policy,
                                 classifier_dropout_prob=0.0)
    assert (config.global_batch_size, config.seq_length, config.num_train_steps) == (4096, 512, 125_000)
    assert (config.optimizer, config.learning_rate, config.warmup_steps) == ("lamb", 0.00176, 3125)
    assert config.data.max_predictions_per_seq == 20


def test_size_config_needs_a_version():
    with pytest.raises(InputError, match="v1 or v2"):
        config_lib.load_config(f"{PRETRAIN / 'base'}.py:v3")


def test_missing_config_file():
    with pytest.raises(InputError, match="does not exist"):
        config_lib.load_config("no/such/config.py")


SHIPPED_PRETRAINING = [(name, arg) for name in ("base", "large", "xlarge", "xxlarge") for arg in ("v1", "v2")]


@pytest.mark.parametrize("name, arg", SHIPPED_PRETRAINING + [("tiny", None)])
def test_pretraining_configs_use_dropout_only_where_the_original_did(name, arg):
    """The original pretrains the SOP classifier without dropout, and the encoder with 0.1 only
    for v1 below xxlarge."""
    spec = f"{PRETRAIN / name}.py" + (f":{arg}" if arg else "")
    model = config_lib.model_config(config_lib.load_config(spec))
    assert model.classifier_dropout_prob == 0.0
    encoder = 0.1 if arg == "v1" and name != "xxlarge" else 0.0
    assert (model.hidden_dropout_prob, model.attention_probs_dropout_prob) == (encoder, encoder)
