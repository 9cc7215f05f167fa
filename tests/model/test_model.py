"""Model behaviour: shared-layer loop, dropout, gradients, remat, dtypes, bad input, sharding names."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import albert_jax
from albert_jax import AlbertConfig, AlbertForPreTraining, AlbertModel
from albert_jax.errors import InputError
from albert_jax.model import layers
from albert_jax.model.pretrained import to_hf_state_dict
from albert_jax.model.sharding import LOGICAL_AXES, logical_to_mesh, partition_specs
from tests.model.reference import hf_config, make_inputs, randomize, torch_inputs

SHARED = AlbertConfig.preset("tiny", num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)


def _ids(batch=2, length=8, seed=0):
    return np.random.default_rng(seed).integers(5, 256, size=(batch, length)).astype(np.int32)


def test_gradients_of_shared_layers_match_hugging_face(tmp_path, torch, transformers):
    """Each group runs twice: its gradient must be the sum over both applications, as in torch."""
    config = hf_config(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)
    reference = randomize(transformers.AlbertModel(config), seed=7)
    reference.save_pretrained(tmp_path)
    ours = AlbertModel.from_pretrained(tmp_path)
    ours.eval()
    inputs = make_inputs(config)
    weights = np.random.default_rng(1).standard_normal((3, 11, config.hidden_size)).astype(np.float32)

    out = reference(**torch_inputs(inputs))
    ((out.last_hidden_state * torch.from_numpy(weights)).sum() + out.pooler_output.sum()).backward()
    expected = {name: p.grad.numpy() for name, p in reference.named_parameters()}

    def loss(model):
        out = model(**inputs)
        return jnp.sum(out.last_hidden_state * weights) + jnp.sum(out.pooler_output)

    grads = nnx.jit(nnx.grad(loss))(ours)
    nnx.update(ours, grads)  # reuse the name mapping: ours now holds its gradients
    got = to_hf_state_dict(ours)
    assert set(expected) <= set(got)
    for name, value in expected.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-4, err_msg=name)


def test_every_layer_application_gets_its_own_dropout_key(monkeypatch):
    seen = []
    original = layers.AlbertLayer.__call__

    def recording(self, x, mask, *, rngs=None):
        jax.debug.callback(lambda key: seen.append(bytes(np.asarray(key))), jax.random.key_data(rngs))
        return original(self, x, mask, rngs=rngs)

    monkeypatch.setattr(layers.AlbertLayer, "__call__", recording)
    model = AlbertModel(SHARED, rngs=nnx.Rngs(0))
    forward = nnx.jit(lambda model, ids: model(ids).last_hidden_state)  # compiles once for both calls
    forward(model, _ids())
    forward(model, _ids())
    jax.effects_barrier()
    applications = SHARED.num_hidden_layers * SHARED.inner_group_num
    assert len(seen) == 2 * applications
    assert len(set(seen)) == len(seen), "a dropout key was reused across applications or calls"


def test_train_mode_uses_dropout_and_eval_mode_does_not():
    model = AlbertForPreTraining(SHARED, rngs=nnx.Rngs(0))
    ids = _ids()

    # Jitted, so each mode compiles once: every eager call would compile the layer scans anew.
    @functools.partial(nnx.jit, static_argnums=2)
    def logits(model, key, deterministic):
        return model(ids, rngs=key, deterministic=deterministic).prediction_logits

    first, second = logits(model, None, None), logits(model, None, None)
    assert not np.allclose(first, second), "two training calls drew the same dropout"
    key = jax.random.key(3)
    np.testing.assert_array_equal(logits(model, key, None), logits(model, key, None))
    model.eval()
    np.testing.assert_array_equal(logits(model, None, None), logits(model, None, None))
    assert not np.allclose(logits(model, None, None), first)
    model.train()
    np.testing.assert_array_equal(logits(model, None, True), logits(model, None, True))


@functools.cache
def _gradients(remat_policy: str) -> list[np.ndarray]:
    """Gradients of the shared-layer model under a remat policy; cached, so the plain ones are
    compiled once for every policy compared with them."""
    ids, positions = _ids(), np.array([[1, 2], [3, 4]], np.int32)
    model = AlbertForPreTraining(SHARED.replace(remat_policy=remat_policy), rngs=nnx.Rngs(0))
    key = jax.random.key(0)  # the same dropout masks for every policy
    loss = lambda m: jnp.sum(m(ids, masked_lm_positions=positions, rngs=key).prediction_logits ** 2)
    return [np.asarray(leaf) for leaf in jax.tree.leaves(nnx.jit(nnx.grad(loss))(model))]


@pytest.mark.parametrize("policy", ["cheap", "full", "dots", "dots_no_batch", "matmuls"])
def test_remat_policies_give_the_same_gradients(policy):
    for plain, remat in zip(_gradients("none"), _gradients(policy), strict=True):
        np.testing.assert_allclose(plain, remat, rtol=1e-4, atol=1e-5)


def test_unrolled_layers_compute_the_same():
    ids = _ids()
    scanned = AlbertForPreTraining(SHARED, rngs=nnx.Rngs(0))
    unrolled = AlbertForPreTraining(SHARED.replace(scan_layers=False), rngs=nnx.Rngs(0))
    key = jax.random.key(1)
    np.testing.assert_allclose(unrolled(ids, rngs=key).prediction_logits, scanned(ids, rngs=key).prediction_logits,
                               atol=1e-5)


def test_jit_compiles_one_layer_whatever_the_depth():
    """The program holds the layer once: its size does not grow with num_hidden_layers."""
    def program(num_layers):
        config = AlbertConfig.preset("tiny", num_hidden_layers=num_layers)
        model = AlbertModel(config, rngs=nnx.Rngs(0))
        model.eval()
        graphdef, state = nnx.split(model)
        forward = lambda s, ids: nnx.merge(graphdef, s)(ids).last_hidden_state
        return jax.jit(forward).lower(state, _ids()).as_text()

    shallow, deep = program(2), program(48)
    assert deep.count("dot_general") == shallow.count("dot_general")
    assert abs(len(deep) - len(shallow)) < 10  # only the loop's trip count differs


# Jitted: an eager call compiles the layer scans, and each operation outside them, on every call.
_forward = nnx.jit(lambda model, ids: model(ids))


def test_bfloat16_compute_with_float32_parameters():
    ids = _ids()
    reference = AlbertForPreTraining(SHARED, rngs=nnx.Rngs(0))
    reference.eval()
    mixed = AlbertForPreTraining(SHARED.replace(dtype="bfloat16"), rngs=nnx.Rngs(0))
    mixed.eval()
    params = jax.tree.leaves(nnx.state(mixed, nnx.Param))
    assert all(p.dtype == jnp.float32 for p in params)
    expected, got = _forward(reference, ids), _forward(mixed, ids)
    assert got.prediction_logits.dtype == jnp.float32  # the loss gets full-precision logits
    hidden = _forward(mixed.albert, ids).last_hidden_state
    assert hidden.dtype == jnp.bfloat16
    assert np.all(np.isfinite(got.prediction_logits))
    np.testing.assert_allclose(got.prediction_logits, expected.prediction_logits, atol=0.1)
    np.testing.assert_allclose(got.sop_logits, expected.sop_logits, atol=0.1)


def test_bfloat16_parameters_run():
    model = AlbertForPreTraining(SHARED.replace(dtype="bfloat16", param_dtype="bfloat16"), rngs=nnx.Rngs(0))
    assert all(p.dtype == jnp.bfloat16 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert np.all(np.isfinite(_forward(model, _ids()).prediction_logits))


@pytest.mark.parametrize("kwargs,message", [
    (dict(input_ids=np.zeros((8,), np.int32)), r"input_ids must be \[batch, length\] \(rank 2\)"),
    (dict(input_ids=np.zeros((2, 8), np.float32)), "input_ids must be integers"),
    (dict(input_ids=np.zeros((2, 80), np.int32)), "more than max_position_embeddings=64"),
    (dict(input_ids=np.zeros((2, 8), np.int32), attention_mask=np.ones((2, 1, 8))),
     r"attention_mask must have the shape of input_ids \(2, 8\), got \(2, 1, 8\)"),
    (dict(input_ids=np.zeros((2, 8), np.int32), attention_mask=np.ones((1, 8))),
     r"attention_mask must have the shape of input_ids \(2, 8\), got \(1, 8\)"),
    (dict(input_ids=np.zeros((2, 8), np.int32), token_type_ids=np.zeros((2, 7), np.int32)),
     "token_type_ids must have the shape"),
    (dict(input_ids=np.zeros((2, 8), np.int32), position_ids=np.arange(8)), "position_ids must have the shape"),
    (dict(input_ids=np.zeros((2, 8), np.int32), masked_lm_positions=np.zeros((2,), np.int32)),
     r"masked_lm_positions must be \[batch, positions\] \(rank 2\)"),
    (dict(input_ids=np.zeros((2, 8), np.int32), masked_lm_positions=np.zeros((3, 2), np.int32)),
     "masked_lm_positions has batch 3, input_ids has 2"),
])
def test_bad_input_names_the_argument(kwargs, message):
    model = AlbertForPreTraining(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(0))
    with pytest.raises(InputError, match=message):
        model(**kwargs)


def _full(value, shape=(2, 8)):
    return np.full(shape, value, np.int32)


@pytest.fixture(scope="module")
def tiny_pretraining_model():
    model = AlbertForPreTraining(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(0))
    model.eval()
    return model


@pytest.mark.parametrize("kwargs,message", [
    (dict(input_ids=_full(256)), r"input_ids holds 256; it must be less than vocab_size \(256\)"),
    (dict(input_ids=_full(-1)), "input_ids holds -1; it must not be negative"),
    (dict(token_type_ids=_full(2)), r"token_type_ids holds 2; it must be less than type_vocab_size \(2\)"),
    (dict(token_type_ids=_full(-2)), "token_type_ids holds -2; it must not be negative"),
    (dict(position_ids=_full(64)),
     r"position_ids holds 64; it must be less than max_position_embeddings \(64\)"),
    (dict(position_ids=_full(-1)), "position_ids holds -1; it must not be negative"),
    (dict(masked_lm_positions=_full(8, (2, 3))),
     r"masked_lm_positions holds 8; it must be less than the input length \(8\)"),
    (dict(masked_lm_positions=_full(-1, (2, 3))), "masked_lm_positions holds -1; it must not be negative"),
])
def test_out_of_range_indices_name_the_argument(tiny_pretraining_model, kwargs, message):
    with pytest.raises(InputError, match=message):
        tiny_pretraining_model(**({"input_ids": _ids()} | kwargs))


def test_out_of_range_ids_of_multiple_choice_name_the_argument():
    model = albert_jax.AlbertForMultipleChoice(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(0))
    with pytest.raises(InputError, match="input_ids holds 300; it must be less than vocab_size"):
        model(_full(300, (2, 3, 8)), deterministic=True)


def test_under_jit_indices_are_not_checked(tiny_pretraining_model):
    """As the call's docstring says: tracers have no values to check; past the end gives NaN."""
    logits = nnx.jit(lambda m, ids: m(ids).prediction_logits)(tiny_pretraining_model, _full(256))
    assert np.all(np.isnan(logits))


def test_multiple_choice_needs_rank_three():
    model = albert_jax.AlbertForMultipleChoice(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(0))
    with pytest.raises(InputError, match=r"input_ids must be \[batch, choices, length\]"):
        model(np.zeros((2, 8), np.int32))


def test_cudnn_attention_off_gpu_says_so():
    if jax.default_backend() == "gpu":
        pytest.skip("this machine has a GPU")
    model = AlbertModel(AlbertConfig.preset("tiny", attention_implementation="cudnn"), rngs=nnx.Rngs(0))
    with pytest.raises(InputError, match="attention_implementation='cudnn' needs an NVIDIA GPU; this backend is cpu"):
        model(_ids(), deterministic=True)


def test_train_mode_without_a_dropout_stream_says_what_to_do():
    model = AlbertModel(AlbertConfig.preset("tiny"), rngs=nnx.Rngs(params=0))
    with pytest.raises(InputError, match="pass rngs=<key>, deterministic=True, or call model.eval"):
        model(_ids())
    model(_ids(), rngs=jax.random.key(0))


def test_every_parameter_names_its_axes():
    model = AlbertForPreTraining(SHARED, rngs=nnx.Rngs(0))
    for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        axes = variable.get_metadata().get("logical_axes")
        assert axes is not None and len(axes) == variable.ndim, path
        assert set(axes) <= set(LOGICAL_AXES) | {None}, path
    specs = partition_specs(nnx.state(model, nnx.Param), [
        ("vocab", "tensor"), ("embed", None), ("hidden", "fsdp"), ("mlp", "tensor"), ("heads", "tensor"),
        ("kv", None), ("layers", None)], {"fsdp": 2, "tensor": 2})
    layer = specs["albert"]["encoder"]["albert_layers"]
    assert tuple(layer["attention"]["query"]["kernel"]) == (None, "fsdp", "tensor", None)
    assert tuple(layer["ffn_output"]["kernel"]) == (None, "tensor", "fsdp")
    assert tuple(specs["albert"]["embeddings"]["word_embeddings"]["embedding"]) == ("tensor", None)


def test_rules_skip_mesh_axes_that_do_not_divide_or_are_taken():
    rules = [("vocab", "tensor"), ("vocab", "fsdp"), ("embed", "tensor")]
    assert tuple(logical_to_mesh(("vocab", "embed"), rules, (30, 16), {"tensor": 4, "fsdp": 2})) == ("fsdp", "tensor")
    assert tuple(logical_to_mesh(("vocab", "embed"), rules, (32, 16), {"tensor": 4, "fsdp": 2})) == ("tensor", None)
    with pytest.raises(ValueError, match="logical axis 'mlp' has no rule"):
        logical_to_mesh(("mlp",), rules)


def test_model_runs_unchanged_under_a_mesh_with_rules(tmp_path):
    """On a 2x2 mesh of simulated devices (a subprocess: the device count is fixed when JAX
    starts), the activation constraints place the MLM logits as the rules say, and the output
    equals the unsharded model's."""
    import subprocess
    import sys

    script = tmp_path / "mesh_check.py"
    script.write_text(_MESH_CHECK)
    env = {**__import__("os").environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "('data', None, 'tensor') ok"


_MESH_CHECK = """
import jax, numpy as np
from flax import nnx
from albert_jax import AlbertConfig, AlbertForPreTraining
from albert_jax.model.sharding import LOGICAL_AXES

config = AlbertConfig.preset("tiny", num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2)
model = AlbertForPreTraining(config, rngs=nnx.Rngs(0))
model.eval()
ids = np.random.default_rng(0).integers(5, config.vocab_size, (4, 8)).astype(np.int32)
expected = nnx.jit(lambda m, x: m(x).prediction_logits)(model, ids)  # eager would compile op by op
mesh = jax.make_mesh((2, 2), ("data", "tensor"), axis_types=(jax.sharding.AxisType.Auto,) * 2)
rules = [("batch", "data"), ("act_heads", "tensor"), ("act_vocab", "tensor")]
rules += [(name, None) for name in LOGICAL_AXES if name not in dict(rules)]
with jax.set_mesh(mesh), nnx.logical_axis_rules(rules):
    got = nnx.jit(lambda m, x: m(x).prediction_logits)(model, ids)
np.testing.assert_allclose(got, expected, atol=1e-5)
print(tuple(got.sharding.spec), "ok")
"""
