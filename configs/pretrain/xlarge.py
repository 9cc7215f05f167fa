"""ALBERT-xlarge (58.7M parameters: 24 applications of one shared layer, H=2048),
pretrained with the paper's recipe (`albert_jax.train.config.paper_config`); the argument
picks v1 or v2.

    albert-jax compile --config pretrain/xlarge.py:v2 --topology v5p:4x4x4   # does it fit? (no TPU needed)
    albert-jax pretrain --config pretrain/xlarge.py:v2 --workdir /gcs/runs/albert-xlarge-v2 \
        --config.data.source=/gcs/data/prepared --config.data.tokenizer=/gcs/data/30k-clean.model

Expect, fine-tuned afterwards (the original v1 release, dev): SQuAD1.1 92.5/86.1 F1/EM,
MNLI 86.4, SST-2 92.4, RACE 74.8.
"""

from albert_jax.train.config import paper_config


def get_config(version: str = "v2"):
    return paper_config("xlarge", version)
