"""GLUE fine-tuning with the ALBERT paper's recipe for the task given as the argument:
cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, wnli (the GLUE spellings "SST-2", "STS-B" work too).

    albert-jax finetune --config configs/finetune/glue.py:sst2 --workdir runs/sst2 \
        --config.init_from=path/to/albert-base-v2 --config.data_dir=path/to/glue_data

init_from is a Hugging Face directory, an original TF release, a pretraining workdir or
save_pretrained output; data_dir is the GLUE download (the original's flag name) (DATA_DIR/SST-2/train.tsv, ...);
without it the data comes from tensorflow-datasets glue/<task> (pip install 'albert_jax[tf]').
The whole dev set is evaluated every 100 steps; eval_results.json reports the best and the final
checkpoint. Expect, from the v2 release's README (dev, best evaluated checkpoint of one run):
SST-2 92.9 / 94.9 / 95.4 / 96.8 and MNLI 84.6 / 86.5 / 87.9 / 90.6 for base / large / xlarge /
xxlarge.
"""

from albert_jax.tasks.glue import glue_config


def get_config(task: str = "sst2"):
    return glue_config(task)
