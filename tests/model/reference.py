"""Hugging Face reference models and inputs for the parity tests.

torch and transformers are the test extra: a helper that needs one skips its calling test
without it, so importing this module never skips a whole test file.
"""

import numpy as np
import pytest


def hf_config(**overrides):
    """A small Hugging Face AlbertConfig with E != H and dropout that eval mode must ignore."""
    fields = dict(vocab_size=99, embedding_size=16, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=4, intermediate_size=37, max_position_embeddings=40,
                  type_vocab_size=2, hidden_act="gelu_new", hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1, num_labels=3, attn_implementation="eager")
    fields.update(overrides)
    return pytest.importorskip("transformers").AlbertConfig(**fields)


def randomize(model, seed):
    """Perturbs every parameter so zero biases and unit LayerNorms cannot hide a mapping error."""
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return model.eval()


def make_inputs(config, batch=3, length=11, seed=0):
    """Ids with right padding in some rows and both token types."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(5, config.vocab_size, size=(batch, length)).astype(np.int32)
    lengths = np.array([length, length - 4, length - 7][:batch])
    attention_mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    token_type_ids = (np.arange(length)[None, :] >= (lengths[:, None] // 2)).astype(np.int32)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


def torch_inputs(inputs):
    torch = pytest.importorskip("torch")
    return {k: torch.from_numpy(v.astype(np.int64)) for k, v in inputs.items()}
