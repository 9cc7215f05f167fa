"""albert_jax: ALBERT (A Lite BERT) pretraining and fine-tuning in JAX/Flax NNX.

The public classes load lazily, so data worker processes that import `albert_jax.data` do not
pay for importing jax and flax (and the tokenizer never needs them).
"""

import importlib

# Each public name and the module that defines it.
_MODULES = {
    "AlbertConfig": "albert_jax.model",
    "AlbertModel": "albert_jax.model",
    "AlbertForPreTraining": "albert_jax.model",
    "AlbertForMaskedLM": "albert_jax.model",
    "AlbertForSequenceClassification": "albert_jax.model",
    "AlbertForTokenClassification": "albert_jax.model",
    "AlbertForQuestionAnswering": "albert_jax.model",
    "AlbertForMultipleChoice": "albert_jax.model",
    "AlbertTokenizer": "albert_jax.data.albert_tokenizer",
}
__all__ = list(_MODULES)


def __getattr__(name: str):
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module 'albert_jax' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
