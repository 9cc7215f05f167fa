"""from_pretrained / save_pretrained: layouts, missing heads, shape errors, and our own checkpoints."""

import json
import logging
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import albert_jax
from albert_jax import AlbertConfig, AlbertForPreTraining, AlbertForSequenceClassification, AlbertModel
from albert_jax.errors import InputError
from tests.model.reference import hf_config, make_inputs, randomize


@pytest.fixture(scope="module")
def hf_base_dir(tmp_path_factory, transformers):
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


def test_pytorch_bin_checkpoint(tmp_path, transformers):
    reference = randomize(transformers.AlbertModel(hf_config()), seed=1)
    reference.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").exists()
    ours = AlbertModel.from_pretrained(tmp_path)
    np.testing.assert_allclose(ours.pooler.kernel[...], reference.pooler.weight.detach().numpy().T)


def test_pytorch_bin_without_torch_says_so(tmp_path, monkeypatch, transformers):
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
    ids = make_inputs(model.config)["input_ids"]
    np.testing.assert_array_equal(model(ids).prediction_logits, restored(ids).prediction_logits)
    assert jax.tree.structure(_params(model)) == jax.tree.structure(_params(restored))


AUTO_CLASSES = {
    "AlbertModel": "AutoModel",
    "AlbertForPreTraining": "AutoModelForPreTraining",
    "AlbertForMaskedLM": "AutoModelForMaskedLM",
    "AlbertForSequenceClassification": "AutoModelForSequenceClassification",
    "AlbertForTokenClassification": "AutoModelForTokenClassification",
    "AlbertForQuestionAnswering": "AutoModelForQuestionAnswering",
    "AlbertForMultipleChoice": "AutoModelForMultipleChoice",
}
LABELS = {"AlbertForSequenceClassification": ("negative", "neutral", "positive"),
          "AlbertForTokenClassification": ("O", "B-PER", "I-PER", "B-LOC")}


@pytest.mark.parametrize("name,auto", AUTO_CLASSES.items(), ids=list(AUTO_CLASSES))
def test_transformers_auto_classes_load_what_we_save(tmp_path, torch, transformers, name, auto):
    # bfloat16 compute and storage here must not make transformers load bfloat16 weights.
    config = AlbertConfig.preset("tiny", dtype="bfloat16", param_dtype="bfloat16",
                                 label_names=LABELS.get(name, ()))
    getattr(albert_jax, name)(config, rngs=nnx.Rngs(0)).save_pretrained(tmp_path)
    theirs, info = getattr(transformers, auto).from_pretrained(tmp_path, dtype="auto", output_loading_info=True)
    assert type(theirs).__name__ == name
    assert theirs.config.architectures == [name]
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [] and info["mismatched_keys"] == [], info
    assert {p.dtype for p in theirs.parameters()} == {torch.float32}
    assert theirs.config.id2label == config.id2label and theirs.config.num_labels == config.num_labels
    assert getattr(albert_jax, name).from_pretrained(tmp_path).config == config


def test_bfloat16_transformers_checkpoint_computes_in_float32(tmp_path, torch, transformers):
    labels = {0: "negative", 1: "neutral", 2: "positive"}
    reference = randomize(transformers.AlbertForSequenceClassification(hf_config(id2label=labels)), seed=2)
    reference.to(torch.bfloat16).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "bfloat16"
    ours = AlbertForSequenceClassification.from_pretrained(tmp_path)
    assert ours.config.dtype == "float32" and ours.config.id2label == labels
    np.testing.assert_array_equal(ours.classifier.kernel[...], reference.classifier.weight.detach().float().numpy().T)
    ours.eval()
    inputs = make_inputs(reference.config)
    assert ours.albert(**inputs).last_hidden_state.dtype == jnp.float32


def test_from_pretrained_takes_labels_as_transformers_does(hf_base_dir):
    model = AlbertForSequenceClassification.from_pretrained(hf_base_dir, id2label={0: "neg", 1: "pos"})
    assert (model.config.num_labels, model.config.label_names) == (2, ("neg", "pos"))
    assert model.classifier.kernel.shape == (32, 2)
    model = AlbertForSequenceClassification.from_pretrained(hf_base_dir, label2id={"a": 0, "b": 1, "c": 2, "d": 3})
    assert model.config.label_names == ("a", "b", "c", "d") and model.classifier.kernel.shape == (32, 4)
    model = AlbertForSequenceClassification.from_pretrained(hf_base_dir, num_labels=5)
    assert model.config.id2label[4] == "LABEL_4"
    with pytest.raises(InputError, match=r"label_names \(id2label\) has 1 names, but num_labels=3"):
        AlbertForSequenceClassification.from_pretrained(hf_base_dir, num_labels=3, id2label={0: "a"})


def _edited_copy(source, target, edit):
    """A copy of the Hugging Face checkpoint `source` with `edit` applied to its weights."""
    from safetensors.numpy import load_file, save_file

    (target / "config.json").write_bytes((source / "config.json").read_bytes())
    save_file(edit(load_file(source / "model.safetensors")), target / "model.safetensors")
    return target


def test_a_missing_encoder_weight_is_an_error(hf_base_dir, tmp_path):
    _edited_copy(hf_base_dir, tmp_path, lambda w: {k: v for k, v in w.items() if "ffn_output" not in k})
    layer = r"albert\.encoder\.albert_layer_groups\.N\.albert_layers\.N"
    with pytest.raises(InputError, match=rf"lacks embedding/encoder weights {layer}\.ffn_output\.bias"):
        AlbertForSequenceClassification.from_pretrained(tmp_path)
    _edited_copy(hf_base_dir, tmp_path, lambda w: {k: v for k, v in w.items() if "word_embeddings" not in k})
    with pytest.raises(InputError, match=r"lacks embedding/encoder weights embeddings\.word_embeddings\.weight"):
        AlbertModel.from_pretrained(tmp_path)


def test_unexpected_tensors_are_named_and_other_heads_are_not(hf_base_dir, tmp_path, caplog):
    extra = {"encoder.extra.weight": np.zeros(3, np.float32), "predictions.bias": np.zeros(99, np.float32)}
    _edited_copy(hf_base_dir, tmp_path, lambda w: w | extra)
    with caplog.at_level(logging.INFO, logger="albert_jax"):
        AlbertModel.from_pretrained(tmp_path)
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "not ALBERT weights: encoder.extra.weight" in warnings
    assert "predictions" not in warnings
    assert "heads this model does not have: predictions.bias" in caplog.text


def test_truncated_weights_name_the_file(hf_base_dir, tmp_path, transformers):
    (tmp_path / "config.json").write_bytes((hf_base_dir / "config.json").read_bytes())
    weights = (hf_base_dir / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(weights[:len(weights) // 2])
    with pytest.raises(InputError, match=r"model\.safetensors: not a readable safetensors file"):
        AlbertModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    randomize(transformers.AlbertModel(hf_config()), seed=1).save_pretrained(tmp_path, safe_serialization=False)
    weights = (tmp_path / "pytorch_model.bin").read_bytes()
    (tmp_path / "pytorch_model.bin").write_bytes(weights[:len(weights) // 2])
    with pytest.raises(InputError, match=r"pytorch_model\.bin: not a readable PyTorch checkpoint"):
        AlbertModel.from_pretrained(tmp_path)
