"""ALBERT-xxlarge (223M parameters: 12 applications of one shared layer, H=4096, 64 heads),
pretrained with the paper's recipe (`albert_jax.train.config.paper_config`); the argument
picks v1 or v2.

Parameters and optimizer state shard over fsdp=4, and the layer body is rematerialised
(keeping the matmul outputs) to leave room for the activations of a 4096 x 512 batch.

    albert-jax compile --config pretrain/xxlarge.py:v2 --topology v5p:4x8x8   # does it fit? (no TPU needed)
    albert-jax pretrain --config pretrain/xxlarge.py:v2 --workdir /gcs/runs/albert-xxlarge-v2 \
        --config.data.source=/gcs/data/prepared --config.data.tokenizer=/gcs/data/30k-clean.model

Expect, fine-tuned afterwards (the original v1 release, dev): SQuAD1.1 94.8/89.3 F1/EM,
MNLI 90.8, SST-2 96.9, RACE 86.5.
"""

from albert_jax.train.config import paper_config


def get_config(version: str = "v2"):
    config = paper_config("xxlarge", version)
    config.model.remat_policy = "dots"
    config.mesh.fsdp = 4
    return config
