"""ALBERT-xxlarge pretraining with the paper's recipe; v1 or v2 by the argument.

223M parameters (12 applications of one shared layer, H=4096, 64 heads). The config shards
parameters and optimizer state over fsdp=4 and rematerialises the layer body (keeping only the
matmul outputs) to leave room for the activations of a 4096 x 512 batch.

Run the same command on every host of a TPU pod slice (scripts/launch_tpu_pod.sh does that):

    albert-jax pretrain --config configs/pretrain/xxlarge.py:v2 --workdir /gcs/runs/albert-xxlarge-v2 \
        --config.data.source=/gcs/data/prepared --config.data.tokenizer=/gcs/data/30k-clean.model

where /gcs is storage every host sees (e.g. a bucket mounted with gcsfuse) and
/gcs/data/prepared a dataset made by `albert-jax data prepare` with that tokenizer.
Check that it fits a slice first: `albert-jax compile --config configs/pretrain/xxlarge.py:v2
--topology v5p:4x4x4`.

The recipe (Lan et al. 2019, section 4.1): global batch 4096, sequence length 512 (10% of
sequences shorter), LAMB with learning rate 0.00176, 3125 warmup steps then linear decay, 125k
steps, up to 20 masked predictions per sequence with n-gram masking (n <= 3), SOP loss.
v1: dropout 0.1 (xxlarge: none); v2: no dropout. The released v2 models also trained far longer
(10M steps for base, 3M for the others) on more data; this config keeps the paper's 125k.

Fine-tuned after this recipe, the original v1 ALBERT-xxlarge reached on dev sets
SQuAD1.1 94.8/89.3 (F1/EM), MNLI 90.8, SST-2 96.9, RACE 86.5 (google-research/albert README, v1 table).
"""

from albert_jax.train.config import paper_config


def get_config(version: str = "v2"):
    config = paper_config("xxlarge", version)
    config.model.remat_policy = "dots"
    config.mesh.fsdp = 4
    return config
