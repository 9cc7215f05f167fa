"""from_pretrained / save_pretrained: layouts, missing heads, shape errors, and our own checkpoints."""

import json
import logging
import sys

import jax
import numpy as np
import pytest
import transformers
from flax import nnx

from albert_jax import AlbertConfig, AlbertForPreTraining, AlbertForSequenceClassification, AlbertModel
from albert_jax.errors import InputError
from tests.model.reference import hf_config, make_inputs, randomize


@pytest.fixture(scope="module")
def hf_base_dir(tmp_path_factory):
    """A Hugging Face AlbertModel checkpoint (no heads), like the ones on the hub."""
    path = tmp_path_factory.mktemp("hf_base")
    randomize(transformers.AlbertModel(hf_config()), seed=0).save_pretrained(path)
    return path


def _params(model):
    return {path: np.asarray(v.get_value()) for path, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def test_missing_heads_are_initialised_and_reported(hf_base_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="albert_jax"):
        model = AlbertForPreTraining.from_pretrained(hf_base_dir)
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "not in the checkpoint, initialised at random" in message
    assert "sop_classifier.classifier.weight" in message and "predictions.dense.weight" in message
    assert "embeddings" not in message.split("initialised at random:")[1]
    base = AlbertModel.from_pretrained(hf_base_dir)
    np.testing.assert_array_equal(model.albert.pooler.kernel[...], base.pooler.kernel[...])


def test_new_task_head_with_config_override(hf_base_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="albert_jax"):
        model = AlbertForSequenceClassification.from_pretrained(hf_base_dir, num_labels=5)
    assert model.classifier.kernel.shape == (32, 5)
    assert "classifier.weight" in caplog.text


def test_shape_mismatch_names_the_parameter(hf_base_dir, tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((hf_base_dir / name).read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 40
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"parameter encoder\.albert_layer_groups\.0\.albert_layers\.0\.ffn\.bias "
                                         r"has shape \(37,\), but the config needs \(40,\)"):
        AlbertModel.from_pretrained(tmp_path)


def test_pytorch_bin_checkpoint(tmp_path):
    reference = randomize(transformers.AlbertModel(hf_config()), seed=1)
    reference.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").exists()
    ours = AlbertModel.from_pretrained(tmp_path)
    np.testing.assert_allclose(ours.pooler.kernel[...], reference.pooler.weight.detach().numpy().T)


def test_pytorch_bin_without_torch_says_so(tmp_path, monkeypatch):
    randomize(transformers.AlbertModel(hf_config()), seed=1).save_pretrained(tmp_path, safe_serialization=False)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match="pytorch_model.bin is a PyTorch pickle and reading it needs torch"):
        AlbertModel.from_pretrained(tmp_path)


def test_unknown_directory_lists_the_layouts(tmp_path):
    with pytest.raises(InputError, match="not a checkpoint albert_jax can read"):
        AlbertModel.from_pretrained(tmp_path)
    with pytest.raises(InputError, match="no such checkpoint directory"):
        AlbertModel.from_pretrained(tmp_path / "missing")


def test_native_layout_round_trip(tmp_path):
    config = AlbertConfig.preset("tiny", num_hidden_layers=4, num_hidden_groups=2, dtype="bfloat16")
    model = AlbertForPreTraining(config, rngs=nnx.Rngs(3))
    model.save_pretrained(tmp_path, layout="native")
    restored = AlbertForPreTraining.from_pretrained(tmp_path)
    assert restored.config == config
    expected, got = _params(model), _params(restored)
    assert expected.keys() == got.keys()
    for path in expected:
        np.testing.assert_array_equal(got[path], expected[path], err_msg=str(path))


def test_native_layout_with_other_shapes_fails_clearly(tmp_path):
    AlbertModel(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(0)).save_pretrained(tmp_path, layout="native")
    config = json.loads((tmp_path / "config.json").read_text())
    config["intermediate_size"] = 48
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match=r"parameter encoder\.albert_layer_groups\.0\.albert_layers\.0\.ffn\.bias "
                                         r"has shape \(64,\), but the config needs \(48,\)"):
        AlbertModel.from_pretrained(tmp_path)


def test_pretraining_workdir_loads_into_any_class(tmp_path):
    """A trainer workdir (config.json + checkpoints/<step>/params) loads its newest step."""
    config = AlbertConfig.preset("tiny")
    for step, seed in ((100, 1), (200, 2)):
        model = AlbertForPreTraining(config, rngs=nnx.Rngs(seed))
        model.save_pretrained(tmp_path / "checkpoints" / str(step), layout="native")
    (tmp_path / "config.json").write_bytes((tmp_path / "checkpoints" / "200" / "config.json").read_bytes())
    base = AlbertModel.from_pretrained(tmp_path)
    np.testing.assert_array_equal(base.pooler.kernel[...], model.albert.pooler.kernel[...])
    classifier = AlbertForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    np.testing.assert_array_equal(classifier.albert.embeddings.word_embeddings.embedding[...],
                                  model.albert.embeddings.word_embeddings.embedding[...])


def test_hf_save_is_atomic_and_reloads(tmp_path):
    model = AlbertForPreTraining(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(0))
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    restored = AlbertForPreTraining.from_pretrained(tmp_path)
    model.eval()
    restored.eval()
    ids = make_inputs(transformers.AlbertConfig(vocab_size=256))["input_ids"]
    np.testing.assert_array_equal(model(ids).prediction_logits, restored(ids).prediction_logits)
    assert jax.tree.structure(_params(model)) == jax.tree.structure(_params(restored))
