"""AlbertConfig: presets, parameter counts, JSON layouts, validation."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from albert_jax import AlbertConfig, AlbertModel
from albert_jax.errors import InputError


@pytest.mark.parametrize("size,expected", [
    ("base", 11_683_584), ("large", 17_683_968), ("xlarge", 58_724_864), ("xxlarge", 222_595_584)])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_parameter_counts_match_hugging_face(size, version, expected):
    config = AlbertConfig.preset(f"{size}-{version}")
    abstract = nnx.eval_shape(lambda: AlbertModel(config, rngs=nnx.Rngs(0)))
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert count == expected


def test_preset_dropout_follows_the_original():
    assert AlbertConfig.preset("base-v1").hidden_dropout_prob == 0.1
    assert AlbertConfig.preset("large-v1").attention_probs_dropout_prob == 0.1
    assert AlbertConfig.preset("base-v2").hidden_dropout_prob == 0.0
    assert AlbertConfig.preset("xxlarge-v1").hidden_dropout_prob == 0.0
    assert AlbertConfig.preset("base-v2", num_labels=5).num_labels == 5


def test_unknown_preset_lists_the_choices():
    with pytest.raises(InputError, match="base-v2"):
        AlbertConfig.preset("huge-v2")


@pytest.mark.parametrize("changes,message", [
    (dict(hidden_size=30, num_attention_heads=4), "num_attention_heads=4 must divide hidden_size=30"),
    (dict(num_hidden_layers=5, num_hidden_groups=2), "num_hidden_groups=2 must divide num_hidden_layers=5"),
    (dict(hidden_act="gelu_fastest"), "unknown hidden_act 'gelu_fastest'"),
    (dict(hidden_dropout_prob=1.5), "hidden_dropout_prob must be in"),
    (dict(dtype="float8"), "unknown dtype"),
    (dict(remat_policy="sometimes"), "unknown remat_policy"),
])
def test_validation_messages(changes, message):
    with pytest.raises(InputError, match=message):
        AlbertConfig.preset("tiny", **changes)


def test_replace_rejects_unknown_fields():
    with pytest.raises(InputError, match="no field hiden_size"):
        AlbertConfig().replace(hiden_size=3)


def test_hf_json_round_trip_and_transformers_reads_it(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = AlbertConfig.preset("tiny", num_labels=4, hidden_act="gelu", dtype="bfloat16")
    config.to_json_file(tmp_path / "config.json")
    assert AlbertConfig.from_json_file(tmp_path / "config.json") == config
    theirs = transformers.AlbertConfig.from_pretrained(tmp_path)
    assert (theirs.hidden_size, theirs.num_labels, theirs.hidden_act) == (32, 4, "gelu")


def test_original_json_maps_gelu_to_the_tanh_form(tmp_path):
    config = AlbertConfig.preset("base-v2")
    config.to_json_file(tmp_path / "albert_config.json", layout="original")
    data = json.loads((tmp_path / "albert_config.json").read_text())
    assert data["hidden_act"] == "gelu" and "model_type" not in data
    assert AlbertConfig.from_json_file(tmp_path / "albert_config.json") == config


def test_exact_gelu_cannot_be_written_in_the_original_layout(tmp_path):
    with pytest.raises(InputError, match="no equivalent in the original"):
        AlbertConfig(hidden_act="gelu").to_json_file(tmp_path / "albert_config.json", layout="original")


def test_bad_json_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="config.json: not valid JSON"):
        AlbertConfig.from_json_file(path)
    path.write_text(json.dumps({"hidden_size": 30, "num_attention_heads": 4}))
    with pytest.raises(InputError, match="config.json: AlbertConfig: num_attention_heads=4"):
        AlbertConfig.from_json_file(path)
