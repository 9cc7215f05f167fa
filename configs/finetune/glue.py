"""GLUE fine-tuning with the ALBERT paper's recipe for the task given as the argument:
cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli (the GLUE spellings "SST-2", "STS-B" work too).

    albert-jax finetune --config configs/finetune/glue.py:sst2 --workdir runs/sst2 \
        --config.init_from=path/to/albert-base-v2 --config.data_dir=path/to/glue_data

init_from is a Hugging Face directory, an original TF release, a pretraining workdir or
save_pretrained output; data_dir is the GLUE download (the original's flag name) (DATA_DIR/SST-2/train.tsv, ...);
without it the data comes from tensorflow-datasets glue/<task> (pip install 'albert_jax[tf]').
The whole dev set is evaluated every 100 steps; eval_results.json reports the best and the final
checkpoint. The paper's dev numbers for comparison (ALBERT-xxlarge, Table 9): MNLI 90.8,
QNLI 95.3, QQP 92.2, RTE 89.2, SST-2 96.9, MRPC 90.9, CoLA 71.4, STS-B 93.0; the v2 release
README: SST-2 92.9 (base), 94.9 (large), 95.4 (xlarge), 96.8 (xxlarge).
"""

from albert_jax.tasks.glue import glue_config


def get_config(task: str = "sst2"):
    return glue_config(task)
