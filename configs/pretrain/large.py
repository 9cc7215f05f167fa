"""ALBERT-large (17.7M parameters: 24 applications of one shared layer, H=1024),
pretrained with the paper's recipe (`albert_jax.train.config.paper_config`); the argument
picks v1 or v2.

    albert-jax compile --config pretrain/large.py:v2 --topology v5p:4x4x4   # does it fit? (no TPU needed)
    albert-jax pretrain --config pretrain/large.py:v2 --workdir /gcs/runs/albert-large-v2 \
        --config.data.source=/gcs/data/prepared --config.data.tokenizer=/gcs/data/30k-clean.model

Expect, fine-tuned afterwards (the original v1 release, dev): SQuAD1.1 90.6/83.9 F1/EM,
MNLI 83.5, SST-2 91.7, RACE 68.5.
"""

from albert_jax.train.config import paper_config


def get_config(version: str = "v2"):
    return paper_config("large", version)
