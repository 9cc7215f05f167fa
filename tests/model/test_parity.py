"""Parity with transformers' PyTorch ALBERT: every head, both directions, float32, 1e-5."""

import numpy as np
import pytest
from flax import nnx

import albert_jax
from tests.model.reference import hf_config, make_inputs, randomize, torch_inputs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CONFIGS = {
    # E != H, one group, gelu_new.
    "e_ne_h": dict(),
    # Several groups with several inner layers each, exact gelu.
    "groups_inner": dict(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2, hidden_act="gelu"),
    # More applications than groups, relu, more heads.
    "shared_deep": dict(num_hidden_layers=6, num_hidden_groups=3, num_attention_heads=8, hidden_act="relu"),
}

# (our class, HF class, [(our field, HF field)])
HEADS = [
    ("AlbertModel", [("last_hidden_state", "last_hidden_state"), ("pooler_output", "pooler_output")]),
    ("AlbertForPreTraining", [("prediction_logits", "prediction_logits"), ("sop_logits", "sop_logits")]),
    ("AlbertForMaskedLM", [("logits", "logits")]),
    ("AlbertForSequenceClassification", [("logits", "logits")]),
    ("AlbertForTokenClassification", [("logits", "logits")]),
    ("AlbertForQuestionAnswering", [("start_logits", "start_logits"), ("end_logits", "end_logits")]),
]


def _head_config(name, overrides):
    if name == "AlbertForQuestionAnswering":
        overrides = dict(overrides, num_labels=2)
    return hf_config(**overrides)


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("head,fields", HEADS, ids=[h for h, _ in HEADS])
def test_hf_to_ours(tmp_path, assert_close, config_name, head, fields):
    config = _head_config(head, CONFIGS[config_name])
    torch.manual_seed(0)
    reference = randomize(getattr(transformers, head)(config), seed=1)
    reference.save_pretrained(tmp_path)
    ours = getattr(albert_jax, head).from_pretrained(tmp_path)
    ours.eval()
    inputs = make_inputs(config)
    with torch.no_grad():
        expected = reference(**torch_inputs(inputs))
    got = ours(**inputs)
    for our_field, hf_field in fields:
        assert_close(getattr(got, our_field), getattr(expected, hf_field), f"{head}.{our_field}")


def test_multiple_choice(tmp_path, assert_close):
    config = hf_config(**CONFIGS["groups_inner"])
    reference = randomize(transformers.AlbertForMultipleChoice(config), seed=2)
    reference.save_pretrained(tmp_path)
    ours = albert_jax.AlbertForMultipleChoice.from_pretrained(tmp_path)
    ours.eval()
    flat = make_inputs(config, batch=3)
    inputs = {k: np.stack([v, v[::-1]], axis=1) for k, v in flat.items()}  # [batch, 2 choices, length]
    with torch.no_grad():
        expected = reference(**torch_inputs(inputs)).logits
    assert_close(ours(**inputs).logits, expected, "AlbertForMultipleChoice.logits")


def test_regression_head_has_one_output(tmp_path, assert_close):
    config = hf_config(num_labels=1)
    reference = randomize(transformers.AlbertForSequenceClassification(config), seed=3)
    reference.save_pretrained(tmp_path)
    ours = albert_jax.AlbertForSequenceClassification.from_pretrained(tmp_path)
    ours.eval()
    inputs = make_inputs(config)
    with torch.no_grad():
        expected = reference(**torch_inputs(inputs)).logits
    got = ours(**inputs).logits
    assert got.shape == (3, 1)
    assert_close(got, expected, "regression logits")


def test_masked_positions_equal_gathered_full_logits(tmp_path, assert_close):
    """The masked-position path computes the same logits as HF's all-position path, gathered."""
    config = hf_config(**CONFIGS["groups_inner"])
    reference = randomize(transformers.AlbertForPreTraining(config), seed=4)
    reference.save_pretrained(tmp_path)
    ours = albert_jax.AlbertForPreTraining.from_pretrained(tmp_path)
    ours.eval()
    inputs = make_inputs(config)
    positions = np.array([[1, 4, 0], [2, 3, 5], [0, 0, 0]], dtype=np.int32)
    with torch.no_grad():
        full = reference(**torch_inputs(inputs)).prediction_logits.numpy()
    expected = np.take_along_axis(full, positions[..., None], axis=1)
    got = ours(**inputs, masked_lm_positions=positions)
    assert got.prediction_logits.shape == (3, 3, config.vocab_size)
    assert_close(got.prediction_logits, expected, "masked-position prediction_logits")


@pytest.mark.parametrize("config_name", ["e_ne_h", "groups_inner"])
def test_ours_to_hf(tmp_path, assert_close, config_name):
    """save_pretrained writes what transformers loads with nothing missing or unexpected."""
    config = hf_config(**CONFIGS[config_name])
    ours = albert_jax.AlbertForPreTraining(albert_jax.AlbertConfig.from_dict(config.to_dict()),
                                           rngs=nnx.Rngs(5))
    # Random biases and LayerNorms, so a transposed or misplaced tensor cannot go unnoticed.
    state = nnx.state(ours, nnx.Param)
    rng = np.random.default_rng(0)
    for _, variable in nnx.to_flat_state(state):
        variable.set_value(variable.get_value() + 0.05 * rng.standard_normal(variable.shape).astype(np.float32))
    nnx.update(ours, state)
    ours.eval()
    ours.save_pretrained(tmp_path)
    reference, info = transformers.AlbertForPreTraining.from_pretrained(
        tmp_path, output_loading_info=True, attn_implementation="eager")
    assert info["missing_keys"] == [] and info["unexpected_keys"] == [], info
    assert info["mismatched_keys"] == [], info
    reference.eval()
    inputs = make_inputs(config)
    with torch.no_grad():
        expected = reference(**torch_inputs(inputs))
    got = ours(**inputs)
    assert_close(got.prediction_logits, expected.prediction_logits, "prediction_logits")
    assert_close(got.sop_logits, expected.sop_logits, "sop_logits")
