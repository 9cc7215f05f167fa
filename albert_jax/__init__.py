"""albert_jax: ALBERT (A Lite BERT) pretraining and fine-tuning in JAX/Flax NNX.

The model classes load lazily, so data worker processes that import `albert_jax.data` do not
pay for importing jax and flax.
"""

__all__ = [
    "AlbertConfig",
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
]


def __getattr__(name: str):
    if name in __all__:
        from albert_jax import model

        return getattr(model, name)
    raise AttributeError(f"module 'albert_jax' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
