"""RACE reading comprehension (multiple choice) with the paper's recipe, as the v2 release ran it.

    albert-jax finetune --config configs/finetune/race.py --workdir runs/race \
        --config.init_from=path/to/albert-base-v2 --config.data_dir=path/to/RACE

data_dir is the RACE download as it comes (RACE/{train,dev,test}/{high,middle}/*.txt);
without it the data comes from tensorflow-datasets race/<level> (pip install 'albert_jax[tf]').
--config.data.level=high|middle|all. Expect, from the v2 release's README (dev): 66.8 (base),
75.2 (large), 80.7 (xlarge), 86.8 (xxlarge); the paper's best RACE test accuracy is 89.4.
"""

from albert_jax.tasks.race import race_config


def get_config():
    return race_config()
