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
    (dict(layer_norm_eps=-1.0), "layer_norm_eps must be a finite positive number, got -1.0"),
    (dict(layer_norm_eps=float("nan")), "layer_norm_eps must be a finite positive number, got nan"),
    (dict(initializer_range=float("inf")), "initializer_range must be a finite non-negative number"),
    (dict(dtype="float8"), "unknown dtype"),
    (dict(remat_policy="sometimes"), "unknown remat_policy"),
])
def test_validation_messages(changes, message):
    with pytest.raises(InputError, match=message):
        AlbertConfig.preset("tiny", **changes)


def test_replace_rejects_unknown_fields():
    with pytest.raises(InputError, match="no field hiden_size"):
        AlbertConfig().replace(hiden_size=3)


def test_hf_json_round_trip_and_transformers_reads_it(tmp_path, transformers):
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


def test_compute_dtype_has_its_own_json_key_and_transformers_sees_the_storage_dtype(tmp_path, torch,
                                                                                    transformers):
    config = AlbertConfig.preset("tiny", dtype="bfloat16", param_dtype="bfloat16")
    config.to_json_file(tmp_path / "config.json", weights_dtype="float32")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["albert_jax_compute_dtype"] == "bfloat16"
    assert data["dtype"] == data["torch_dtype"] == "float32"
    assert transformers.AlbertConfig.from_pretrained(tmp_path).dtype == torch.float32
    assert AlbertConfig.from_json_file(tmp_path / "config.json") == config
    # Without a weights file to describe, the stored dtype is param_dtype (the native layout's).
    assert config.to_hf_dict()["dtype"] == "bfloat16"


def test_transformers_storage_dtype_never_becomes_our_compute_dtype(tmp_path, transformers):
    transformers.AlbertConfig(hidden_size=32, num_attention_heads=4, dtype="bfloat16").save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["dtype"] == "bfloat16"
    for json_data in (data, {k: v for k, v in data.items() if k != "dtype"} | {"torch_dtype": "bfloat16"}):
        config = AlbertConfig.from_dict(json_data)  # the second as transformers < 4.56 writes it
        assert (config.dtype, config.param_dtype) == ("float32", "float32")


def test_label_names_round_trip_through_transformers(tmp_path, transformers):
    config = AlbertConfig.preset("tiny", id2label={0: "negative", 1: "neutral", 2: "positive"})
    assert (config.num_labels, config.label_names) == (3, ("negative", "neutral", "positive"))
    assert config.label2id == {"negative": 0, "neutral": 1, "positive": 2}
    hash(config)  # graphdefs hash the config
    config.to_json_file(tmp_path / "config.json")
    theirs = transformers.AlbertConfig.from_pretrained(tmp_path)
    assert (theirs.num_labels, theirs.id2label) == (3, {0: "negative", 1: "neutral", 2: "positive"})
    assert theirs.label2id == config.label2id
    assert AlbertConfig.from_json_file(tmp_path / "config.json") == config

    theirs = transformers.AlbertConfig(hidden_size=32, num_attention_heads=4, id2label={0: "O", 1: "B-PER"})
    theirs.save_pretrained(tmp_path)
    ours = AlbertConfig.from_json_file(tmp_path / "config.json")
    assert (ours.num_labels, ours.label_names) == (2, ("O", "B-PER"))


def test_default_label_names_are_hugging_faces():
    config = AlbertConfig.preset("tiny", num_labels=3)
    assert config.label_names == () and config.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert AlbertConfig.preset("tiny", label_names=["LABEL_0", "LABEL_1"]) == AlbertConfig.preset("tiny")


def test_labels_follow_transformers_rules():
    named = AlbertConfig.preset("tiny", label_names=("a", "b", "c"))
    assert named.num_labels == 3
    assert named.replace(num_labels=3).label_names == ("a", "b", "c")
    assert named.replace(num_labels=5).label_names == ()  # a new head: LABEL_<i> again
    assert named.replace(label2id={"x": 1, "y": 0}).label_names == ("y", "x")
    assert AlbertConfig.from_dict({"id2label": {"0": "p", "1": "q"}, "num_labels": 2}).label_names == ("p", "q")


@pytest.mark.parametrize("make,message", [
    (lambda: AlbertConfig(label_names=("a", "b", "c")), r"label_names \(id2label\) has 3 names, but num_labels=2"),
    (lambda: AlbertConfig.preset("tiny", id2label={0: "a"}, num_labels=2),
     r"label_names \(id2label\) has 1 names, but num_labels=2"),
    (lambda: AlbertConfig(label_names="ab"), "label_names must be a tuple of strings, got 'ab'"),
    (lambda: AlbertConfig(label_names=("a", "a")), "label_names has duplicates"),
    (lambda: AlbertConfig().replace(id2label={1: "a", 2: "b"}), r"id2label ids must be 0\.\.1"),
    (lambda: AlbertConfig().replace(id2label=["a"]), "id2label must be a dict"),
    (lambda: AlbertConfig().replace(id2label={0: "a"}, label_names=("a",)), "not both"),
    (lambda: AlbertConfig.from_dict({"id2label": {"0": "a", "1": "b"}, "num_labels": 3}, source="x/config.json"),
     r"x/config.json: AlbertConfig: label_names \(id2label\) has 2 names, but num_labels=3"),
])
def test_label_validation_names_the_field(make, message):
    with pytest.raises(InputError, match=message):
        make()
