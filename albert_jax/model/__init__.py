"""The ALBERT model: config, layers, heads, task models, and checkpoint conversion."""

from albert_jax.model.config import AlbertConfig
from albert_jax.model.models import (
    AlbertForMaskedLM,
    AlbertForMultipleChoice,
    AlbertForPreTraining,
    AlbertForQuestionAnswering,
    AlbertForSequenceClassification,
    AlbertForTokenClassification,
    AlbertModel,
)
from albert_jax.model.squad_head import AlbertForSquadV2

__all__ = [
    "AlbertConfig",
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
    "AlbertForMultipleChoice",
    "AlbertForSquadV2",
]
