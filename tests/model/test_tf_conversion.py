"""Original google-research TF checkpoints load as transformers' own TF converter loads them."""

import json
import os

import numpy as np
import pytest

import albert_jax
from tests.model.reference import hf_config, make_inputs, torch_inputs

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from transformers.models.albert.modeling_albert import load_tf_weights_in_albert  # noqa: E402


def original_variables(config, rng):
    """Every variable of an original ALBERT pretraining checkpoint, under its original name."""
    V, E, H, I = config.vocab_size, config.embedding_size, config.hidden_size, config.intermediate_size
    shapes = {
        "bert/embeddings/word_embeddings": (V, E),
        "bert/embeddings/position_embeddings": (config.max_position_embeddings, E),
        "bert/embeddings/token_type_embeddings": (config.type_vocab_size, E),
        "bert/embeddings/LayerNorm/gamma": (E,),
        "bert/embeddings/LayerNorm/beta": (E,),
        "bert/encoder/embedding_hidden_mapping_in/kernel": (E, H),
        "bert/encoder/embedding_hidden_mapping_in/bias": (H,),
        "bert/pooler/dense/kernel": (H, H),
        "bert/pooler/dense/bias": (H,),
        "cls/predictions/transform/dense/kernel": (H, E),
        "cls/predictions/transform/dense/bias": (E,),
        "cls/predictions/transform/LayerNorm/gamma": (E,),
        "cls/predictions/transform/LayerNorm/beta": (E,),
        "cls/predictions/output_bias": (V,),
        "cls/seq_relationship/output_weights": (2, H),
        "cls/seq_relationship/output_bias": (2,),
    }
    layer = {
        "attention_1/self/query/kernel": (H, H), "attention_1/self/query/bias": (H,),
        "attention_1/self/key/kernel": (H, H), "attention_1/self/key/bias": (H,),
        "attention_1/self/value/kernel": (H, H), "attention_1/self/value/bias": (H,),
        "attention_1/output/dense/kernel": (H, H), "attention_1/output/dense/bias": (H,),
        "LayerNorm/gamma": (H,), "LayerNorm/beta": (H,),
        "ffn_1/intermediate/dense/kernel": (H, I), "ffn_1/intermediate/dense/bias": (I,),
        "ffn_1/intermediate/output/dense/kernel": (I, H), "ffn_1/intermediate/output/dense/bias": (H,),
        "LayerNorm_1/gamma": (H,), "LayerNorm_1/beta": (H,),
    }
    for g in range(config.num_hidden_groups):
        for j in range(config.inner_group_num):
            for name, shape in layer.items():
                shapes[f"bert/encoder/transformer/group_{g}/inner_group_{j}/{name}"] = shape
    values = {}
    for name, shape in shapes.items():
        base = 1.0 if name.endswith("gamma") else 0.0
        values[name] = (base + 0.05 * rng.standard_normal(shape)).astype(np.float32)
    # Optimizer slots and the step counter are in real checkpoints too and must be skipped.
    values["bert/embeddings/word_embeddings/adam_m"] = np.zeros(shapes["bert/embeddings/word_embeddings"], np.float32)
    values["global_step"] = np.int64(1000)
    return values


def write_tf_checkpoint(directory, values, step=1000):
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(v, name=n) for n, v in values.items()]
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, os.path.join(directory, "model.ckpt"), global_step=step)
    return os.path.join(directory, f"model.ckpt-{step}")


def test_original_checkpoint_matches_transformers_converter(tmp_path, assert_close):
    config = hf_config(num_hidden_layers=4, num_hidden_groups=2, inner_group_num=2, num_labels=2,
                       hidden_act="gelu_new")
    prefix = write_tf_checkpoint(str(tmp_path), original_variables(config, np.random.default_rng(0)))
    original_config = {
        "vocab_size": config.vocab_size, "embedding_size": config.embedding_size,
        "hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
        "num_hidden_groups": config.num_hidden_groups, "inner_group_num": config.inner_group_num,
        "num_attention_heads": config.num_attention_heads, "intermediate_size": config.intermediate_size,
        "hidden_act": "gelu",  # the original's name for the tanh form
        "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": config.max_position_embeddings,
        "type_vocab_size": config.type_vocab_size, "initializer_range": 0.02,
        "net_structure_type": 0, "layers_to_keep": [], "gap_size": 0, "num_memory_blocks": 0,
        "down_scale_factor": 1,
    }
    (tmp_path / "albert_config.json").write_text(json.dumps(original_config))

    reference = transformers.AlbertForPreTraining(config)
    load_tf_weights_in_albert(reference, config, prefix)
    reference.eval()
    ours = albert_jax.AlbertForPreTraining.from_pretrained(tmp_path)
    assert ours.config.hidden_act == "gelu_new"
    ours.eval()

    inputs = make_inputs(config)
    with torch.no_grad():
        expected = reference(**torch_inputs(inputs))
    got = ours(**inputs)
    assert_close(got.prediction_logits, expected.prediction_logits, "prediction_logits")
    assert_close(got.sop_logits, expected.sop_logits, "sop_logits")
