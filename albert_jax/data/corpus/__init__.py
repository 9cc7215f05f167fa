"""Where pretraining text comes from: every source yields documents, each a list of sentences.

Sources stream: none holds more than one document, so a corpus of any size can pass through.
Iterating a source twice yields the same documents in the same order, which `prepare` relies on
to resume an interrupted run.
"""

from albert_jax.data.corpus.base import Corpus, Document, sentences
from albert_jax.data.corpus.builtin import BuiltinCorpus
from albert_jax.data.corpus.text_files import TextFiles
from albert_jax.data.corpus.tfds_text import TfdsText

__all__ = ["BuiltinCorpus", "Corpus", "Document", "TextFiles", "TfdsText", "sentences"]
