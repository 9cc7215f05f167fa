"""ALBERT-base (11.7M parameters: 12 applications of one shared layer, H=768),
pretrained with the paper's recipe (`albert_jax.train.config.paper_config`); the argument
picks v1 or v2.

    albert-jax compile --config pretrain/base.py:v2 --topology v5p:4x4x4   # does it fit? (no TPU needed)
    albert-jax pretrain --config pretrain/base.py:v2 --workdir /gcs/runs/albert-base-v2 \
        --config.data.source=/gcs/data/prepared --config.data.tokenizer=/gcs/data/30k-clean.model

Expect, fine-tuned afterwards (the original v1 release, dev): SQuAD1.1 89.3/82.3 F1/EM,
MNLI 81.6, SST-2 90.3, RACE 64.0.
"""

from albert_jax.train.config import paper_config


def get_config(version: str = "v2"):
    return paper_config("base", version)
