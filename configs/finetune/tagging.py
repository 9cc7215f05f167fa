"""Token tagging (e.g. CoNLL-2003 named entities) from CoNLL-style files or tfds conll2003.

    albert-jax finetune --config configs/finetune/tagging.py --workdir runs/ner \
        --config.init_from=path/to/albert-base-v2 \
        --config.data.train_file=train.txt --config.data.dev_file=dev.txt

Files hold one word per line with its tag in the last column, blank lines between sentences.
The dev metric is entity-level F1 as seqeval computes it; the recipe is BERT's for NER, since
the ALBERT paper has no tagging task.
"""

from albert_jax.tasks.tagging import tagging_config


def get_config():
    return tagging_config()
