"""placeholder"""
from albert_jax.data.corpus.base import Corpus
class TfdsText(Corpus):
    pass
